// The policy pack against what the program really declares (the hpa stack under mocks): every rule passes
// there, and fails on the specific mistake it exists to catch.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { PolicyResource } from '@pulumi/policy';
import {
  digestPinned,
  hpaTargetHasCpuRequest,
  metricsScrapedNotPublic,
  nonRoot,
  probes,
  requestsAndLimits,
} from '../../policy/rules';
import { runStack } from '../stacks/harness';
import { allViolations, asPolicyResource, stackViolationsOf, violationsOf } from './run-policies';

const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
const JOB = 'kubernetes:batch/v1:Job';

describe('policy pack', () => {
  let resources: PolicyResource[];
  // The classifier's own objects: the database's Service and Secret have other names.
  const byType = (type: string) => resources.find((r) => r.type === type && r.name === 'classifier')!;
  /** A fresh copy of the declared Deployment's pod spec's first container, to break one thing in. */
  const mutatedDeployment = (mutate: (d: PolicyResource) => void): PolicyResource => {
    const copy = structuredClone(byType(DEPLOYMENT));
    mutate(copy);
    return copy;
  };
  const firstContainer = (d: PolicyResource) => d.props.spec.template.spec.containers[0];

  before(async () => {
    const run = await runStack('hpa', { gcpProject: 'test-project' });
    resources = run.resources.map(asPolicyResource);
  });

  it('passes everything the hpa stack declares', async () => {
    assert.deepEqual(await allViolations(resources), []);
  });

  it('requests and limits: flags a container without a memory limit', async () => {
    const broken = mutatedDeployment((d) => delete firstContainer(d).resources.limits.memory);
    assert.deepEqual(await violationsOf(requestsAndLimits, broken), [
      'container "classifier" has no memory limit',
    ]);
  });

  it('requests and limits: looks into Jobs and their init containers too', async () => {
    const job = structuredClone(byType(DEPLOYMENT));
    job.type = JOB;
    job.props.spec.template.spec.initContainers = [{ name: 'wait', image: firstContainer(job).image }];
    const found = await violationsOf(requestsAndLimits, job);
    assert.equal(found.length, 4);
    assert.ok(found.every((m) => m.startsWith('container "wait"')));
  });

  it('probes: flags a missing readiness probe and a probe on /test', async () => {
    const broken = mutatedDeployment((d) => {
      delete firstContainer(d).readinessProbe;
      firstContainer(d).livenessProbe.httpGet.path = '/test';
    });
    assert.deepEqual(await violationsOf(probes, broken), [
      'container "classifier" has no readiness probe',
      'container "classifier" liveness probe calls /test, which runs an inference',
    ]);
  });

  it('non-root: flags a pod that may run as root and a container that may escalate', async () => {
    const broken = mutatedDeployment((d) => {
      d.props.spec.template.spec.securityContext.runAsNonRoot = false;
      delete firstContainer(d).securityContext.allowPrivilegeEscalation;
    });
    assert.deepEqual(await violationsOf(nonRoot, broken), [
      'container "classifier" may run as root: set runAsNonRoot: true',
      'container "classifier" allows privilege escalation: set allowPrivilegeEscalation: false',
    ]);
  });

  it('digest-pinned: flags an image given by tag, and passes one still unknown in a preview', async () => {
    const tagged = mutatedDeployment((d) => (firstContainer(d).image = 'node-0:5000/gourmetgram:latest'));
    assert.deepEqual(await violationsOf(digestPinned, tagged), [
      'container "classifier" image "node-0:5000/gourmetgram:latest" is not pinned by digest',
    ]);
    const unknown = mutatedDeployment((d) => delete firstContainer(d).image);
    assert.deepEqual(await violationsOf(digestPinned, unknown), []);
  });

  it('HPA target: flags a scaled Deployment without a CPU request, or a missing target', async () => {
    const noCpu = mutatedDeployment((d) => delete firstContainer(d).resources.requests.cpu);
    const others = resources.filter((r) => r.type !== DEPLOYMENT);
    assert.deepEqual(await stackViolationsOf(hpaTargetHasCpuRequest, [...others, noCpu]), [
      'HPA target "gourmetgram" container "classifier" has no CPU request to measure utilization against',
    ]);
    const missing = await stackViolationsOf(hpaTargetHasCpuRequest, others);
    assert.deepEqual(missing, ['HPA scales Deployment "gourmetgram", which this stack does not declare']);
    assert.ok(
      resources.some((r) => r.type === HPA),
      'the hpa stack declares an HPA to check',
    );
  });

  it('metrics: flags pods not annotated for scraping, and a Service that exposes the metrics port (issue 12)', async () => {
    const SERVICE = 'kubernetes:core/v1:Service';
    const others = resources.filter((r) => r.type !== DEPLOYMENT && r.type !== SERVICE);
    const service = byType(SERVICE);
    assert.deepEqual(await stackViolationsOf(metricsScrapedNotPublic, resources), []);
    const unannotated = mutatedDeployment((d) => delete d.props.spec.template.metadata.annotations);
    assert.deepEqual(await stackViolationsOf(metricsScrapedNotPublic, [...others, unannotated, service]), [
      'pods with a metrics port are not annotated prometheus.io/scrape: "true"',
      'prometheus.io/port is "", not the metrics container port 9464',
    ]);
    for (const targetPort of ['metrics', 9464]) {
      const exposed = structuredClone(service);
      exposed.props.spec.ports.push({ name: 'scrape', port: 9464, targetPort, protocol: 'TCP' });
      assert.deepEqual(
        await stackViolationsOf(metricsScrapedNotPublic, [...others, byType(DEPLOYMENT), exposed]),
        [
          'Service "gourmetgram" routes port 9464 to the metrics port: scrape it from inside the cluster instead',
        ],
      );
    }
  });
});
