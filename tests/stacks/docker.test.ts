// Stack docker (Pulumi.docker.yaml) as committed: the course's first exercise, one container on node-0 with
// port 32000 published, the image pulled from node-0:5000 by digest. No cluster, nothing in Google Cloud.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { T, assertClassifierEnv, assertExports } from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { stackUnderTest } from './harness';

describe('stack docker (a Docker host)', () => {
  const run = stackUnderTest('docker');
  // Loose: the container's inputs as the SDK serialised them.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let hostContainer: any;
  before(() => {
    hostContainer = run.one(T.dockerContainer).inputs;
  });

  it('declares no cluster, no Kubernetes object and nothing in Google Cloud', () => {
    assert.deepEqual(
      run.resources
        .map((r) => r.type)
        .filter(
          (t) => t.startsWith('kubernetes:') || t.includes(':providers:kubernetes') || t.includes('gcp'),
        ),
      [],
    );
  });

  it('builds the image with the same component as every strategy, then pulls its digest onto the host', () => {
    assert.equal(run.one(T.image).inputs.imageName, 'node-0:5000/gourmetgram:latest');
    const pulled = run.one(T.remoteImage).inputs;
    assert.equal(pulled.name, run.outputs.image);
    assert.match(String(run.outputs.image), /^node-0:5000\/gourmetgram@sha256:[0-9a-f]{64}$/);
    assert.equal(pulled.keepLocally, false, 'pulumi destroy removes the pulled image too');
    assert.match(
      hostContainer.image,
      /^sha256:[0-9a-f]{64}$/,
      'the container runs the image pulled by digest',
    );
  });

  it('talks to the Docker host of the stack file, through a provider of its own', () => {
    assert.equal(run.one(T.dockerProvider).inputs.host, 'ssh://node-0');
    const hostProvider = run.one(T.dockerProvider).name;
    for (const type of [T.dockerContainer, T.remoteImage]) {
      assert.match(String(run.one(type).provider), new RegExp(`::${hostProvider}::`));
    }
  });

  it('publishes port 32000 to the service, restarts it unless stopped, and exports its url', () => {
    assert.deepEqual(hostContainer.ports, [{ internal: 3000, external: 32000, protocol: 'tcp' }]);
    assert.equal(hostContainer.restart, 'unless-stopped');
    assert.equal(run.outputs.url, 'http://node-0:32000');
    assertExports(run, 'docker', undefined, false);
  });

  it("has the pods' limits, requests as the kubelet would turn them into cgroup settings, and no swap", () => {
    assert.equal(hostContainer.cpus, '1');
    assert.equal(hostContainer.memory, 512);
    assert.equal(hostContainer.memorySwap, 512);
    assert.equal(hostContainer.cpuShares, 512, '500m requested = 512 CPU shares');
    assert.equal(hostContainer.memoryReservation, 336, 'the memory request, 336Mi, in MiB');
  });

  it("checks readiness (/readyz) the way the image's HEALTHCHECK checks, and allows the startup probe's five minutes", () => {
    const health = hostContainer.healthcheck;
    assert.deepEqual(health.tests.slice(0, 3), ['CMD', 'node', '-e']);
    assert.match(health.tests[3], /fetch\('http:\/\/127\.0\.0\.1:3000\/readyz'\)/);
    assert.doesNotMatch(health.tests[3], /\/test/);
    assert.equal(health.startPeriod, '300s');
    assert.equal(health.interval, '10s');
    assert.equal(health.retries, 3);
    assert.equal(hostContainer.wait, true, 'pulumi up waits until the container is healthy');
    assert.ok(hostContainer.waitTimeout > 300);
  });

  it('runs as the non-root user on a read-only root with a tmpfs /tmp, no capabilities, no new privileges', () => {
    assert.equal(hostContainer.user, '1000:1000');
    assert.equal(hostContainer.readOnly, true);
    assert.match(hostContainer.tmpfs['/tmp'], /size=512m/);
    assert.deepEqual(hostContainer.capabilities, { drops: ['ALL'] });
    assert.deepEqual(hostContainer.securityOpts, ['no-new-privileges:true']);
  });

  it("gets the pods' environment and drains within its stop timeout", () => {
    const env = Object.fromEntries(
      (hostContainer.envs as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    assertClassifierEnv(env, '1');
    assert.equal(hostContainer.stopSignal, 'SIGTERM');
    assert.ok(
      hostContainer.stopTimeout > Number(env.SHUTDOWN_TIMEOUT_MS) / 1000,
      'stop timeout exceeds the drain deadline',
    );
    assert.equal(hostContainer.destroyGraceSeconds, hostContainer.stopTimeout);
  });

  it('carries the labels the monitor selects on', () => {
    const labels = Object.fromEntries(
      (hostContainer.labels as { label: string; value: string }[]).map((l) => [l.label, l.value]),
    );
    assert.equal(labels['app.kubernetes.io/name'], 'gourmetgram');
    assert.equal(labels['app.kubernetes.io/instance'], 'docker');
    assert.equal(labels['app.kubernetes.io/component'], 'classifier');
    assert.equal(hostContainer.name, 'gourmetgram-docker');
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
