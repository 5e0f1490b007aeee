// The policy pack on the labels database (the dev stack under mocks: PostgreSQL as a StatefulSet in the cluster):
// every rule passes there, and fails on the mistake it exists to catch.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { PolicyResource } from '@pulumi/policy';
import {
  credentialsFromSecrets,
  databasesNotPublic,
  nonRoot,
  probes,
  requestsAndLimits,
  statefulSetsHaveVolumes,
} from '../../policy/rules';
import { runStack } from '../stacks/harness';
import { allViolations, asPolicyResource, stackViolationsOf, violationsOf } from './run-policies';

const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const STATEFUL_SET = 'kubernetes:apps/v1:StatefulSet';
const SERVICE = 'kubernetes:core/v1:Service';

describe('policy pack on the labels database', () => {
  let resources: PolicyResource[];
  const find = (type: string, name: string) => resources.find((r) => r.type === type && r.name === name)!;
  const mutated = (type: string, name: string, mutate: (props: PolicyResource['props']) => void) => {
    const copy = structuredClone(find(type, name));
    mutate(copy.props);
    return copy;
  };
  const postgres = (props: PolicyResource['props']) => props.spec.template.spec.containers[0];

  before(async () => {
    resources = (await runStack('dev')).resources.map(asPolicyResource);
  });

  it('passes everything the dev stack declares, its database included', async () => {
    assert.ok(find(STATEFUL_SET, 'label-database'), 'the dev stack runs PostgreSQL in the cluster');
    assert.deepEqual(await allViolations(resources), []);
  });

  it('credentials: flags DATABASE_URL or a password written into a pod spec, or any URL with a password', async () => {
    const plainUrl = mutated(DEPLOYMENT, 'classifier', (p) => {
      const env = p.spec.template.spec.containers[0].env;
      env.find((v: { name: string }) => v.name === 'DATABASE_URL').valueFrom = undefined;
      env.find((v: { name: string }) => v.name === 'DATABASE_URL').value = 'postgres://u:p@db:5432/labels';
      env.push({ name: 'CACHE', value: 'redis://:hunter2@cache:6379' });
    });
    assert.deepEqual(await violationsOf(credentialsFromSecrets, plainUrl), [
      'container "classifier" sets DATABASE_URL in plain text: take it from a Secret (secretKeyRef)',
      'container "classifier" sets CACHE in plain text: take it from a Secret (secretKeyRef)',
    ]);
    const plainPassword = mutated(STATEFUL_SET, 'label-database', (p) => {
      const variable = postgres(p).env.find((v: { name: string }) => v.name === 'POSTGRES_PASSWORD');
      delete variable.valueFrom;
      variable.value = 'hunter2';
    });
    assert.deepEqual(await violationsOf(credentialsFromSecrets, plainPassword), [
      'container "postgres" sets POSTGRES_PASSWORD in plain text: take it from a Secret (secretKeyRef)',
    ]);
  });

  it('volumes: flags a StatefulSet without a claim, or a claim without a size', async () => {
    const noClaim = mutated(STATEFUL_SET, 'label-database', (p) => delete p.spec.volumeClaimTemplates);
    assert.deepEqual(await violationsOf(statefulSetsHaveVolumes, noClaim), [
      'StatefulSet has no volumeClaimTemplates: its data would die with the pod',
    ]);
    const noSize = mutated(STATEFUL_SET, 'label-database', (p) => {
      delete p.spec.volumeClaimTemplates[0].spec.resources;
    });
    assert.deepEqual(await violationsOf(statefulSetsHaveVolumes, noSize), [
      'volume claim "data" requests no storage size',
    ]);
  });

  it('limits, probes and non-root apply to the database container as to the classifier', async () => {
    const broken = mutated(STATEFUL_SET, 'label-database', (p) => {
      delete postgres(p).resources.limits.memory;
      delete postgres(p).livenessProbe;
      p.spec.template.spec.securityContext.runAsNonRoot = false;
    });
    assert.deepEqual(await violationsOf(requestsAndLimits, broken), [
      'container "postgres" has no memory limit',
    ]);
    assert.deepEqual(await violationsOf(probes, broken), ['container "postgres" has no liveness probe']);
    assert.deepEqual(await violationsOf(nonRoot, broken), [
      'container "postgres" may run as root: set runAsNonRoot: true',
    ]);
  });

  it('not public: flags the database Service as a load balancer or node port, or any that forwards 5432', async () => {
    const others = resources.filter((r) => !(r.type === SERVICE && r.name === 'label-database'));
    assert.deepEqual(await stackViolationsOf(databasesNotPublic, resources), []);
    for (const type of ['LoadBalancer', 'NodePort']) {
      const exposed = mutated(SERVICE, 'label-database', (p) => {
        delete p.spec.clusterIP;
        p.spec.type = type;
      });
      assert.deepEqual(await stackViolationsOf(databasesNotPublic, [...others, exposed]), [
        `Service "gourmetgram-db" exposes the database as ${type}: make it ClusterIP`,
      ]);
    }
    const classifierService = find(SERVICE, 'classifier');
    const forwarded = mutated(SERVICE, 'classifier', (p) => {
      p.spec.ports.push({ name: 'pg', port: 15432, targetPort: 5432, protocol: 'TCP' });
    });
    const rest = resources.filter((r) => r !== classifierService);
    assert.deepEqual(await stackViolationsOf(databasesNotPublic, [...rest, forwarded]), [
      `Service "gourmetgram" exposes the database as ${String(classifierService.props.spec.type)}: make it ClusterIP`,
    ]);
  });
});
