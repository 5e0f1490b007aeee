// Stack docker (Pulumi.docker.yaml) as committed: the course's first exercise, one container on node-0 with
// port 32000 published, the image pulled from node-0:5000 by digest. No cluster, nothing in Google Cloud.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { T, assertClassifierEnv, assertExports } from './expectations';
import { allViolations, asPolicyResource } from '../policy/run-policies';
import { FAKE_DATABASE_PASSWORD, isSecretValue, revealed, stackUnderTest } from './harness';
import { assertGeneratedPassword } from './database-expectations';

describe('stack docker (a Docker host)', () => {
  const run = stackUnderTest('docker');
  // Loose: the container's inputs as the SDK serialised them.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let hostContainer: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let databaseContainer: any;
  const envOfContainer = (inputs: { envs: unknown }) =>
    Object.fromEntries(
      revealed(inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
  before(() => {
    const byName = (name: string) => run.ofType(T.dockerContainer).find((c) => c.name === name)!;
    hostContainer = byName('classifier').inputs;
    databaseContainer = byName('classifier-database').inputs;
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
    const pulled = run.ofType(T.remoteImage).find((r) => r.name === 'classifier')!.inputs;
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
      for (const resource of run.ofType(type)) {
        assert.match(String(resource.provider), new RegExp(`::${hostProvider}::`), resource.name);
      }
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
    assert.equal(hostContainer.memoryReservation, 256, 'the memory request, 256Mi, in MiB');
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
    const env = envOfContainer(hostContainer);
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

  it('runs PostgreSQL beside it: the official image by digest, its data in a protected named volume', () => {
    const images = run.ofType(T.remoteImage).map((r) => r.inputs.name);
    assert.ok(
      images.some((name: string) => /^postgres@sha256:[0-9a-f]{64}$/.test(name)),
      images.join(),
    );
    const volume = run.one(T.dockerVolume);
    assert.equal(volume.inputs.name, 'gourmetgram-docker-db');
    assert.equal(volume.protect, true, 'pulumi destroy refuses to delete the data');
    assertGeneratedPassword(run, true);
    assert.deepEqual(databaseContainer.volumes, [
      { volumeName: 'gourmetgram-docker-db', containerPath: '/var/lib/postgresql/data' },
    ]);
    const env = envOfContainer(databaseContainer);
    assert.equal(env.POSTGRES_PASSWORD, FAKE_DATABASE_PASSWORD);
    assert.equal(env.PGDATA, '/var/lib/postgresql/data/pgdata');
    assert.ok(isSecretValue(databaseContainer.envs), 'the password stays a secret in the state');
    assert.equal(databaseContainer.ports, undefined, 'no database port is published on the host');
    assert.equal(databaseContainer.user, '999:999');
    assert.deepEqual(databaseContainer.healthcheck.tests.slice(0, 2), ['CMD', 'pg_isready']);
    assert.equal(databaseContainer.stopSignal, 'SIGINT', "PostgreSQL's fast shutdown");
    assert.equal(databaseContainer.restart, 'unless-stopped');
    for (const resource of run.ofType(T.dockerVolume).concat(run.ofType(T.dockerNetwork))) {
      assert.match(String(resource.provider), new RegExp(`::${run.one(T.dockerProvider).name}::`));
    }
  });

  it('joins both containers to one network, where DATABASE_URL names the database container', () => {
    const network = run.one(T.dockerNetwork).inputs.name;
    assert.equal(network, 'gourmetgram-docker');
    assert.deepEqual(databaseContainer.networksAdvanced, [{ name: network }]);
    assert.deepEqual(hostContainer.networksAdvanced, [{ name: network }]);
    assert.equal(
      envOfContainer(hostContainer).DATABASE_URL,
      `postgres://gourmetgram:${FAKE_DATABASE_PASSWORD}@gourmetgram-docker-db:5432/gourmetgram`,
    );
    assert.ok(isSecretValue(hostContainer.envs), "the classifier's environment is a secret in the state");
    assert.equal(run.outputs.databaseHost, 'gourmetgram-docker-db');
    assert.ok(!JSON.stringify(run.outputs).includes(FAKE_DATABASE_PASSWORD));
  });

  it('passes the policy pack', async () => {
    assert.deepEqual(await allViolations(run.resources.map(asPolicyResource)), []);
  });
});
