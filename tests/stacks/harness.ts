// Runs the Pulumi program under Pulumi's unit-test mocks, configured by the committed Pulumi.yaml and
// Pulumi.<stack>.yaml exactly as the CLI would (project defaults, then the stack file, then whatever a user
// would `pulumi config set` on top), and records every resource it declares.
//
// The program keeps module-level state, so one process runs one stack: each *.test.ts file is its own
// process under `node --test`.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import YAML from 'yaml';

export const ROOT = path.join(__dirname, '..', '..');
export const PROJECT = 'gourmetgram';

type ConfigValue = string | number | boolean | string[];
// Resource inputs are whatever the SDK serialised; tests narrow them where they look.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

interface ProjectFile {
  name: string;
  config: Record<string, { type: string; default?: ConfigValue; description?: string }>;
}

export function readProjectFile(): ProjectFile {
  return YAML.parse(fs.readFileSync(path.join(ROOT, 'Pulumi.yaml'), 'utf8')) as ProjectFile;
}

/** The stack file's project keys, without the `gourmetgram:` prefix. */
export function readStackFile(stack: string): Record<string, ConfigValue> {
  const file = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as {
    config?: Record<string, ConfigValue>;
  };
  const values: Record<string, ConfigValue> = {};
  for (const [key, value] of Object.entries(file.config ?? {})) {
    const [namespace, name] = key.split(':');
    if (namespace === PROJECT && name) values[name] = value;
  }
  return values;
}

/** How the CLI hands a value to the program: strings as they are, everything else as JSON. */
function asConfigString(value: ConfigValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Project defaults, overlaid by the stack file, overlaid by `overrides` (what a user sets on top). */
export function stackConfig(
  stack: string,
  overrides: Record<string, ConfigValue> = {},
): Record<string, string> {
  const merged: Record<string, ConfigValue> = {};
  for (const [key, declaration] of Object.entries(readProjectFile().config)) {
    if (declaration.default !== undefined) merged[key] = declaration.default;
  }
  Object.assign(merged, readStackFile(stack), overrides);
  return Object.fromEntries(Object.entries(merged).map(([key, value]) => [key, asConfigString(value)]));
}

export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, Loose>;
  provider?: string;
  custom: boolean;
  /** The `protect` resource option: `pulumi destroy` refuses to delete the resource. */
  protect: boolean;
}

export interface StackRun {
  stack: string;
  resources: RecordedResource[];
  invokes: string[];
  outputs: Record<string, unknown>;
  secretOutputs: Set<string>;
  ofType(type: string): RecordedResource[];
  one(type: string): RecordedResource;
}

const fakeDigest = (text: string) => `sha256:${crypto.createHash('sha256').update(text).digest('hex')}`;
export const FAKE_LB_IP = '203.0.113.10';
export const FAKE_NODE_IP = '203.0.113.7';
export const FAKE_ASSIGNED_NODE_PORT = 31555;
/** What the mocked RandomPassword generates: tests look for it where it must never appear. */
export const FAKE_DATABASE_PASSWORD = 'mockedPassword0123456789abcdefgh';
export const FAKE_CLOUD_SQL_IP = '10.20.0.3';
/** Knative's default domain template, {{.Name}}.{{.Namespace}}.{{.Domain}}, with its default domain. */
export const fakeInferenceServiceUrl = (name: string, namespace: string) =>
  `http://${name}.${namespace}.example.com`;

/** Outputs a cloud or the Kubernetes API server would fill in. */
function mockState(type: string, name: string, inputs: Record<string, Loose>): Record<string, Loose> {
  const state = { ...inputs };
  if (type.startsWith('kubernetes:') && !type.startsWith('kubernetes:index')) {
    state.metadata = { name: `${name}-generated`, ...inputs.metadata };
  }
  switch (type) {
    case 'docker:index/image:Image': {
      const repo = String(inputs.imageName).replace(/:[^:/]+$/, '');
      state.repoDigest = `${repo}@${fakeDigest(String(inputs.imageName))}`;
      break;
    }
    case 'kubernetes:core/v1:Service': {
      const spec = inputs.spec ?? {};
      const ports = (spec.ports ?? []).map((port: Record<string, unknown>) =>
        spec.type === 'ClusterIP' ? port : { nodePort: FAKE_ASSIGNED_NODE_PORT, ...port },
      );
      state.spec = { ...spec, ports };
      state.status = { loadBalancer: spec.type === 'LoadBalancer' ? { ingress: [{ ip: FAKE_LB_IP }] } : {} };
      break;
    }
    case 'docker:index/remoteImage:RemoteImage':
      // The engine's ID for the pulled image: the digest of its config, not of the registry manifest.
      state.imageId = fakeDigest(`config of ${String(inputs.name)}`);
      state.repoDigest = inputs.name;
      break;
    case 'kubernetes:serving.kserve.io/v1beta1:InferenceService':
      state.status = {
        url: fakeInferenceServiceUrl(inputs.metadata.name, inputs.metadata.namespace),
        conditions: [{ type: 'Ready', status: 'True' }],
      };
      break;
    case 'gcp:container/cluster:Cluster':
      state.name = `${name}-cluster`;
      state.endpoint = '198.51.100.1';
      state.masterAuth = { clusterCaCertificate: Buffer.from('test CA').toString('base64') };
      // Autopilot has created a pool for the first pods by the time anyone reads it; Standard lists its own.
      state.nodePools = inputs.enableAutopilot
        ? [
            {
              instanceGroupUrls: [
                'https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-b/instanceGroupManagers/gk3-pool-1',
              ],
            },
          ]
        : [];
      break;
    case 'gcp:container/nodePool:NodePool':
      state.instanceGroupUrls = [
        'https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instanceGroupManagers/gke-pool-1',
      ];
      break;
    case 'random:index/randomPassword:RandomPassword':
      state.result = FAKE_DATABASE_PASSWORD;
      break;
    case 'gcp:sql/databaseInstance:DatabaseInstance':
      state.privateIpAddress = FAKE_CLOUD_SQL_IP;
      state.connectionName = `test-project:${String(inputs.region)}:${String(inputs.name)}`;
      break;
    case 'gcp:serviceaccount/account:Account':
      state.email = `${inputs.accountId}@test-project.iam.gserviceaccount.com`;
      break;
  }
  return state;
}

function mockCall(token: string, inputs: Record<string, Loose>): Record<string, unknown> {
  switch (token) {
    case 'gcp:organizations/getClientConfig:getClientConfig':
      return { accessToken: 'test-access-token', project: 'test-project' };
    case 'gcp:compute/getInstanceGroup:getInstanceGroup':
      return { instances: [`${String(inputs.selfLink).replace(/instanceGroups\/.*/, '')}instances/node-1`] };
    case 'gcp:compute/getInstance:getInstance':
      return { networkInterfaces: [{ accessConfigs: [{ natIp: FAKE_NODE_IP }] }] };
    case 'docker:index/getRegistryImage:getRegistryImage':
      return { name: inputs.name, sha256Digest: fakeDigest(String(inputs.name)) };
    default:
      throw new Error(`no mock for invoke ${token}`);
  }
}

/** How the SDK serialises a secret value: a marked object around it. */
const SECRET_SIGNATURE = '4dabf18193072939515e22adb298388d';

export function isSecretValue(value: unknown): value is { value: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<string, unknown>)[SECRET_SIGNATURE] === '1b47061264138c4ac30d75fd1eb44270'
  );
}

/** `value` with every secret unwrapped, as a provider (or the policy engine) sees it. */
export function revealed<T>(value: T): T {
  if (isSecretValue(value)) return revealed(value.value) as T;
  if (Array.isArray(value)) return value.map((item) => revealed(item as unknown)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, revealed(item)])) as T;
  }
  return value;
}

function outputValue(value: unknown): Promise<unknown> {
  if (!pulumi.Output.isInstance(value)) return Promise.resolve(value);
  return new Promise((resolve) => value.apply((v) => resolve(v)));
}

/** Waits until no new resource has been registered for a while: some wait on other resources' outputs. */
async function settle(resources: RecordedResource[]): Promise<void> {
  let seen = -1;
  let quiet = 0;
  while (quiet < 5) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    quiet = resources.length === seen ? quiet + 1 : 0;
    seen = resources.length;
  }
}

/** Hands the program its configuration as the CLI would: every key under the project's namespace. */
function setStackConfig(
  stack: string,
  overrides: Record<string, ConfigValue>,
  otherNamespaces: Record<string, string> = {},
): void {
  const projectKeys = Object.entries(stackConfig(stack, overrides)).map(([key, value]) => [
    `${PROJECT}:${key}`,
    value,
  ]);
  pulumi.runtime.setAllConfig({ ...Object.fromEntries(projectKeys), ...otherNamespaces });
}

/** The register request as the mock monitor receives it: it holds the resource options the mocks are not shown. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getProtect(): boolean;
}
type RegisterResource = (request: RegisterRequest, callback: unknown) => unknown;

/**
 * Pulumi's mocks hand `newResource` the inputs but not the options; the request the mock monitor receives
 * has them. Its `protect` flags are kept by type and name for `recorded` to pick up.
 */
function recordProtection(protections: Map<string, boolean>): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: RegisterResource };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    protections.set(`${request.getType()}::${request.getName()}`, request.getProtect());
    return register(request, callback);
  };
}

function recorded(
  args: pulumi.runtime.MockResourceArgs,
  protections: Map<string, boolean> = new Map(),
): RecordedResource {
  return {
    type: args.type,
    name: args.name,
    inputs: args.inputs,
    provider: args.provider,
    custom: args.custom ?? true,
    protect: protections.get(`${args.type}::${args.name}`) ?? false,
  };
}

/**
 * Configures the mocks for `stack`, imports the program (index.ts) and returns what it declared. Throws
 * what the program throws (a bad config ends it before any resource). `otherNamespaces` are full keys such
 * as `gcp:project`.
 */
export async function runStack(
  stack: string,
  overrides: Record<string, ConfigValue> = {},
  otherNamespaces: Record<string, string> = {},
): Promise<StackRun> {
  const resources: RecordedResource[] = [];
  const invokes: string[] = [];
  const protections = new Map<string, boolean>();
  setStackConfig(stack, overrides, otherNamespaces);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push(recorded(args, protections));
        return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
      },
      call(args) {
        invokes.push(args.token);
        return mockCall(args.token, args.inputs);
      },
    },
    PROJECT,
    stack,
    false,
  );
  recordProtection(protections);
  const program = (await import(path.join(ROOT, 'index.ts'))) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  const secretOutputs = new Set<string>();
  for (const [name, value] of Object.entries(program)) {
    if (name === 'default' || name === '__esModule') continue;
    outputs[name] = await outputValue(value);
    if (pulumi.Output.isInstance(value) && (await pulumi.isSecret(value))) secretOutputs.add(name);
  }
  await settle(resources);
  const ofType = (type: string) => resources.filter((r) => r.type === type);
  return {
    stack,
    resources,
    invokes,
    outputs,
    secretOutputs,
    ofType,
    one(type: string) {
      const found = ofType(type);
      if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
      return found[0]!;
    },
  };
}

/**
 * The stack run a suite's tests read: the program runs once, in a `before` hook of the enclosing suite, and
 * fills in the returned object, so tests use it as they would runStack's result. One per test file (the
 * program is imported once per process).
 */
export function stackUnderTest(
  stack: string,
  overrides: Record<string, ConfigValue> = {},
  otherNamespaces: Record<string, string> = {},
): StackRun {
  const run = {} as StackRun;
  before(async () => {
    Object.assign(run, await runStack(stack, overrides, otherNamespaces));
  });
  return run;
}

/**
 * Like `pulumi preview` before anything exists: every output a provider would compute is unknown. Returns
 * the types declared; the program must get through without reading an unknown value.
 */
export async function runPreview(
  stack: string,
  overrides: Record<string, ConfigValue> = {},
): Promise<string[]> {
  const resources: RecordedResource[] = [];
  setStackConfig(stack, overrides);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push(recorded(args));
        return { id: undefined, state: {} };
      },
      call: () => ({}),
    },
    PROJECT,
    stack,
    true,
  );
  await import(path.join(ROOT, 'index.ts'));
  await settle(resources);
  return resources.map((r) => r.type);
}
