// What must hold for the labels store of every strategy: the classifier reads DATABASE_URL from a Secret (never a
// value in its spec), and a database the stack creates is PostgreSQL with a volume, probes, limits, a non-root
// user, no public address and a generated password that follows databaseProtect.

import assert from 'node:assert/strict';
import { DIGEST_REF, T, classifierObjects, databaseObjects, only } from './expectations';
import { FAKE_DATABASE_PASSWORD, isSecretValue, revealed, type StackRun } from './harness';

// Loose: inputs as the SDK serialised them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

export const DATABASE_SECRET = 'gourmetgram-db';

/** Every resource input of the run as text, secrets revealed: where a leaked password would show. */
function declaredText(run: StackRun, types?: string[]): string {
  return JSON.stringify(
    run.resources.filter((r) => !types || types.includes(r.type)).map((r) => revealed(r.inputs)),
  );
}

/** The database's Secret: DATABASE_URL under `url`, kept a Pulumi secret. */
export function databaseSecret(run: StackRun): { url: string; password?: string } {
  const secret = only(databaseObjects(run, T.secret), 'database Secret').inputs;
  const stringData: unknown = secret.stringData;
  assert.equal(secret.metadata.name, DATABASE_SECRET);
  assert.ok(isSecretValue(stringData), 'the Secret is filled from Pulumi secrets');
  return revealed(stringData.value) as { url: string; password?: string };
}

/** The classifier container takes DATABASE_URL from the Secret by reference, and no pod spec holds its value. */
export function assertDatabaseUrlFromSecret(run: StackRun, container: Loose): void {
  const variables = container.env.filter((v: { name: string }) => v.name === 'DATABASE_URL');
  assert.deepEqual(variables, [
    { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: DATABASE_SECRET, key: 'url' } } },
  ]);
  const { url } = databaseSecret(run);
  const workloads = [T.deployment, T.statefulSet, T.inferenceService, T.job];
  assert.ok(!declaredText(run, workloads).includes(url), 'DATABASE_URL is never written into a pod spec');
  assert.ok(
    !declaredText(run, workloads).includes(FAKE_DATABASE_PASSWORD),
    'the password is never written into a pod spec',
  );
}

/** No output shows the password (the URL stays in the Secret); databaseHost names the server. */
export function assertDatabaseOutputs(run: StackRun, host: string): void {
  assert.equal(run.outputs.databaseHost, host);
  assert.ok(!JSON.stringify(run.outputs).includes(FAKE_DATABASE_PASSWORD), 'no output holds the password');
}

/** The generated password: letters and digits (no escaping in a URL), protected as the data is. */
export function assertGeneratedPassword(run: StackRun, protect: boolean): void {
  const password = run.one(T.randomPassword);
  assert.deepEqual(password.inputs, { length: 32, special: false });
  assert.equal(password.protect, protect, 'the password follows databaseProtect');
}

/** PostgreSQL as a StatefulSet in the namespace, with everything a database the stack creates must have. */
export function assertInClusterDatabase(run: StackRun, opts: { protect: boolean; namespace: string }): void {
  const host = `gourmetgram-db.${opts.namespace}.svc.cluster.local`;
  const statefulSet = only(databaseObjects(run, T.statefulSet), 'database StatefulSet');
  const spec = statefulSet.inputs.spec;
  const service = only(databaseObjects(run, T.service), 'database Service').inputs;

  // One server, its volume claimed per pod, kept or deleted with the StatefulSet as databaseProtect says.
  assert.equal(spec.replicas, 1);
  assert.equal(spec.serviceName, service.metadata.name);
  assert.deepEqual(spec.volumeClaimTemplates.length, 1);
  const claim = spec.volumeClaimTemplates[0];
  assert.deepEqual(claim.spec.accessModes, ['ReadWriteOnce']);
  assert.equal(claim.spec.resources.requests.storage, '5Gi');
  assert.deepEqual(spec.persistentVolumeClaimRetentionPolicy, {
    whenDeleted: opts.protect ? 'Retain' : 'Delete',
    whenScaled: 'Retain',
  });
  assert.equal(
    statefulSet.protect,
    opts.protect,
    'the StatefulSet (and so its claim) follows databaseProtect',
  );

  const pod = spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const postgres = pod.containers[0];
  assert.match(postgres.image, /^postgres@sha256:[0-9a-f]{64}$/, 'the official image, pinned by digest');
  assert.match(postgres.image, DIGEST_REF);
  const dataMount = postgres.volumeMounts.find((m: { name: string }) => m.name === claim.metadata.name);
  assert.equal(dataMount.mountPath, '/var/lib/postgresql/data');
  const env = Object.fromEntries(postgres.env.map((v: Loose) => [v.name, v.value ?? v.valueFrom]));
  assert.equal(env.PGDATA, '/var/lib/postgresql/data/pgdata', 'a folder in the volume, not its root');
  assert.equal(env.POSTGRES_USER, 'gourmetgram');
  assert.equal(env.POSTGRES_DB, 'gourmetgram');
  assert.deepEqual(env.POSTGRES_PASSWORD, { secretKeyRef: { name: DATABASE_SECRET, key: 'password' } });

  // Guaranteed: requests equal limits.
  const resources = { cpu: '250m', memory: '256Mi' };
  assert.deepEqual(postgres.resources, { requests: resources, limits: resources });
  for (const probe of [postgres.startupProbe, postgres.readinessProbe, postgres.livenessProbe]) {
    assert.equal(probe.exec.command[0], 'pg_isready');
    assert.ok(probe.exec.command.includes('--host=127.0.0.1'), 'over TCP, not the first start’s socket');
  }
  assert.deepEqual(postgres.lifecycle.preStop.exec.command.slice(0, 3), ['pg_ctl', 'stop', '--mode=fast']);
  assert.deepEqual(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 999,
    runAsGroup: 999,
    fsGroup: 999,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(postgres.securityContext.allowPrivilegeEscalation, false);
  assert.equal(postgres.securityContext.readOnlyRootFilesystem, true);
  const writable = postgres.volumeMounts.map((m: { mountPath: string }) => m.mountPath).sort();
  assert.deepEqual(writable, ['/tmp', '/var/lib/postgresql/data', '/var/run/postgresql']);
  assert.equal(pod.automountServiceAccountToken, false);

  // Reachable inside the cluster only, and only the database pods are behind it.
  assert.equal(service.spec.clusterIP, 'None');
  assert.equal(service.spec.type, undefined, 'ClusterIP: no node port, no load balancer');
  assert.deepEqual(service.spec.ports, [
    { name: 'postgres', port: 5432, targetPort: 'postgres', protocol: 'TCP' },
  ]);
  assert.deepEqual(service.spec.selector, spec.selector.matchLabels);
  assert.equal(spec.template.metadata.labels['app.kubernetes.io/component'], 'database');
  for (const other of classifierObjects(run, T.service)) {
    assert.equal(
      other.inputs.spec.selector['app.kubernetes.io/component'],
      'classifier',
      "the classifier's Service never routes to the database",
    );
  }

  const secret = databaseSecret(run);
  assert.equal(secret.url, `postgres://gourmetgram:${FAKE_DATABASE_PASSWORD}@${host}:5432/gourmetgram`);
  assert.equal(secret.password, FAKE_DATABASE_PASSWORD);
  assert.equal(only(databaseObjects(run, T.secret), 'database Secret').protect, opts.protect);
  assertGeneratedPassword(run, opts.protect);
  assertDatabaseOutputs(run, host);
}

/** Every database the stack might create, absent. */
export function assertNoDatabaseCreated(run: StackRun): void {
  for (const type of [T.statefulSet, T.randomPassword, T.sqlInstance, T.dockerVolume, T.dockerNetwork]) {
    assert.deepEqual(run.ofType(type), [], `no ${type}`);
  }
  assert.deepEqual(databaseObjects(run, T.service), [], 'no database Service');
}
