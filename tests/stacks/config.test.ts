// The typed configuration: Pulumi.yaml declares what stacks/config-keys.ts defines, the way the CLI reads
// it, the committed stack files parse, and bad values fail with a message that names the key and the fix.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import * as pulumi from '@pulumi/pulumi';
import { parseConfig, plaintextSecretWarnings } from '../../stacks/config';
import { declaredType } from '../../tools/docs/pulumi-config';
import { CONFIG_KEYS, configFields } from '../../stacks/config-keys';
import { ROOT, readProjectFile, readStackFile, stackConfig } from './harness';

const STACKS = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();

describe('Pulumi.yaml and stacks/config-keys.ts', () => {
  const declared = readProjectFile().config;

  it('declare the same keys', () => {
    assert.deepEqual(Object.keys(declared).sort(), [...CONFIG_KEYS].sort());
  });

  it('declare the same type and default for every key, each with a description', () => {
    const defaults = configFields.parse({}) as Record<string, unknown>;
    for (const key of CONFIG_KEYS) {
      const declaration = declared[key]!;
      assert.ok(declaration.description && declaration.description.length > 10, `${key} has a description`);
      assert.deepEqual(declaration.default, defaults[key], `${key} default`);
      assert.equal(declaration.type, declaredType(defaults[key]), `${key} type`);
    }
  });

  it("declare keys the way Pulumi's project schema allows (type, items, description, default)", () => {
    // sdk/go/common/workspace/project.json: a config type declaration takes these fields only.
    const allowed = new Set(['type', 'items', 'description', 'secret', 'default']);
    for (const [key, declaration] of Object.entries(declared)) {
      for (const field of Object.keys(declaration)) assert.ok(allowed.has(field), `${key}.${field}`);
      assert.ok(['string', 'integer', 'boolean', 'array'].includes(declaration.type), `${key} type`);
      if (declaration.type === 'array') assert.ok('items' in declaration, `${key} needs items`);
    }
  });

  it('stack files set only declared keys, each of its declared type', () => {
    for (const stack of STACKS) {
      for (const [key, value] of Object.entries(readStackFile(stack))) {
        assert.ok(key in declared, `${stack}: ${key} is not declared in Pulumi.yaml`);
        assert.equal(
          declaredType(value),
          declared[key]!.type,
          `${stack}: ${key} (the CLI rejects a mismatch)`,
        );
      }
    }
  });
});

describe('committed stack files', () => {
  it('are the six the README lists', () => {
    assert.deepEqual(STACKS, ['dev', 'docker', 'hpa', 'k8s', 'kserve', 'lb']);
  });

  it('docker parses as committed: a Docker host, no cluster settings needed', () => {
    const config = parseConfig(stackConfig('docker'), 'docker');
    assert.equal(config.classifier.strategy.workload, 'dockerContainer');
    assert.deepEqual(config.docker, {
      host: 'ssh://node-0',
      port: 32000,
      restart: 'unless-stopped',
      address: 'node-0',
    });
    assert.equal(config.kserve, undefined);
  });

  it("kserve asks for the user's GCP project, then parses into a scale-to-zero Serverless service", () => {
    assert.throws(() => parseConfig(stackConfig('kserve'), 'kserve'), /gourmetgram:gcpProject/);
    const config = parseConfig(stackConfig('kserve', { gcpProject: 'p' }), 'kserve');
    assert.deepEqual(config.kserve, {
      mode: 'Serverless',
      install: true,
      version: 'v0.20.0',
      minReplicas: 0,
      maxReplicas: 5,
      scaleMetric: 'concurrency',
      scaleTarget: 2,
      canaryTrafficPercent: undefined,
    });
    assert.equal(config.docker, undefined);
    assert.equal(config.classifier.hpa, undefined, 'KServe makes its own autoscaler');
  });

  it('dev parses as committed', () => {
    const config = parseConfig(stackConfig('dev'), 'dev');
    assert.equal(config.cluster.kind, 'existing');
    assert.equal(config.classifier.serviceType, 'NodePort');
  });

  for (const [stack, serviceType, replicas] of [
    ['k8s', 'NodePort', 1],
    ['lb', 'LoadBalancer', 5],
    ['hpa', 'LoadBalancer', undefined],
  ] as const) {
    it(`${stack} asks for the user's GCP project, then parses`, () => {
      assert.throws(
        () => parseConfig(stackConfig(stack), stack),
        /gourmetgram:gcpProject: .*pulumi config set gcpProject/,
      );
      const config = parseConfig(stackConfig(stack, { gcpProject: 'p' }), stack);
      assert.equal(config.classifier.serviceType, serviceType);
      assert.equal(config.classifier.replicas, replicas);
      assert.equal(config.classifier.hpa !== undefined, stack === 'hpa');
    });
  }
});

describe('bad configuration fails with the message a user needs', () => {
  const parseDev = (overrides: Record<string, string | number | boolean>) =>
    parseConfig(stackConfig('dev', overrides), 'dev');

  it('unknown strategy: names the key, the value and the choices', () => {
    assert.throws(
      () => parseDev({ strategy: 'canary' }),
      (error: Error) => {
        assert.match(error.message, /gourmetgram:strategy/);
        assert.match(error.message, /"k8s"\|"lb"\|"hpa"/);
        assert.match(error.message, /got "canary"/);
        return true;
      },
    );
  });

  it('hpaMinReplicas above hpaMaxReplicas', () => {
    assert.throws(
      () => parseDev({ strategy: 'hpa', hpaMinReplicas: 6, hpaMaxReplicas: 5 }),
      /gourmetgram:hpaMinReplicas: hpaMinReplicas \(6\) must not exceed hpaMaxReplicas \(5\)/,
    );
  });

  it('minNodes above maxNodes', () => {
    assert.throws(
      () => parseDev({ minNodes: 4, maxNodes: 3, nodeCount: 4 }),
      /minNodes \(4\) must not exceed maxNodes \(3\)/,
    );
  });

  it('negative replicas', () => {
    assert.throws(() => parseDev({ replicas: -1 }), /gourmetgram:replicas: .*>=0.*got "-1"/);
  });

  it('replicas that are not a whole number', () => {
    assert.throws(() => parseDev({ replicas: '2.5' }), /gourmetgram:replicas/);
  });

  it('GKE without a project', () => {
    assert.throws(
      () => parseDev({ cluster: 'gke', registry: '' }),
      /gourmetgram:gcpProject: cluster is gke.*pulumi config set gcpProject <project-id>/,
    );
  });

  it('an existing cluster with nowhere to push the image', () => {
    assert.throws(() => parseDev({ registry: '' }), /gourmetgram:registry: .*pulumi config set registry/);
  });

  it('a node port outside the node-port range', () => {
    assert.throws(() => parseDev({ nodePort: 8080 }), /gourmetgram:nodePort: .*30000-32767/);
  });

  it('more workers than the CPU limit can run', () => {
    assert.throws(
      () => parseDev({ workers: 4, cpuLimit: '2' }),
      /gourmetgram:workers: .*raise cpuLimit or lower workers/,
    );
    assert.equal(
      parseConfig(stackConfig('dev', { workers: 2, cpuLimit: '2' }), 'dev').classifier.env.workers,
      2,
    );
  });

  it('a request above its limit, and a malformed quantity', () => {
    assert.throws(
      () => parseDev({ memoryRequest: '1Gi' }),
      /memoryRequest \(1Gi\) exceeds memoryLimit \(512Mi\)/,
    );
    assert.throws(() => parseDev({ cpuLimit: 'one' }), /gourmetgram:cpuLimit: must be a CPU quantity/);
  });

  it('an image reference that is not one, for the service image and the training image alike', () => {
    for (const key of ['image', 'trainingImage']) {
      assert.throws(
        () => parseDev({ [key]: 'ghcr.io/example/gourmetgram@sha256:abc' }),
        new RegExp(`gourmetgram:${key}: must be an image reference`),
      );
    }
  });

  it('a boolean that is not one', () => {
    assert.throws(() => parseDev({ trainingEnabled: 'sometimes' }), /gourmetgram:trainingEnabled/);
  });

  it('reports every broken key at once', () => {
    assert.throws(
      () => parseDev({ strategy: 'x', replicas: -2, tfjsBackend: 'gpu' }),
      (error: Error) => {
        for (const key of ['strategy', 'replicas', 'tfjsBackend'])
          assert.match(error.message, new RegExp(`gourmetgram:${key}`));
        return true;
      },
    );
  });
});

describe('the docker, kserve and Autopilot keys', () => {
  const parse = (stack: string, overrides: Record<string, string | number | boolean>) =>
    parseConfig(stackConfig(stack, { gcpProject: 'p', ...overrides }), stack);

  it('docker: no cluster to create, no training, and a Docker host URL', () => {
    assert.throws(
      () => parse('docker', { cluster: 'gke' }),
      /gourmetgram:cluster: strategy docker runs one container on a Docker host.*pulumi config set cluster existing/,
    );
    assert.throws(
      () => parse('docker', { trainingEnabled: true, modelSource: 'volume' }),
      (error: Error) => {
        assert.match(error.message, /gourmetgram:trainingEnabled: .*pulumi config set trainingEnabled false/);
        assert.match(error.message, /gourmetgram:modelSource: .*pulumi config set modelSource image/);
        return true;
      },
    );
    assert.throws(
      () => parse('docker', { dockerHost: 'node-0' }),
      /gourmetgram:dockerHost: must be empty .*ssh:\/\/user@host \(got "node-0"\)/,
    );
    assert.throws(() => parse('docker', { registry: '' }), /gourmetgram:registry: the Docker host pulls/);
    assert.throws(() => parse('docker', { dockerRestart: 'sometimes' }), /gourmetgram:dockerRestart/);
  });

  it('docker: the url names the ssh host, or nodeAddress when users come another way', () => {
    assert.equal(parse('docker', { dockerHost: 'ssh://cc@192.0.2.9:22' }).docker?.address, '192.0.2.9');
    assert.equal(
      parse('docker', { dockerHost: 'tcp://build.example:2376' }).docker?.address,
      'build.example',
    );
    assert.equal(parse('docker', { nodeAddress: '198.51.100.3' }).docker?.address, '198.51.100.3');
    assert.equal(parse('docker', { dockerHost: 'unix:///var/run/docker.sock' }).docker?.address, 'localhost');
  });

  it('kserve: scale to zero only with Knative, and min within max', () => {
    assert.throws(
      () => parse('kserve', { kserveMode: 'RawDeployment' }),
      /gourmetgram:kserveMinReplicas: RawDeployment scales with an HPA.*pulumi config set kserveMode Serverless/,
    );
    assert.throws(
      () => parse('kserve', { kserveMinReplicas: 6 }),
      /kserveMinReplicas \(6\) must not exceed kserveMaxReplicas \(5\)/,
    );
  });

  it("kserve: each mode's scale metrics, and canaries only between Knative revisions", () => {
    assert.throws(
      () => parse('kserve', { kserveScaleMetric: 'cpu' }),
      /gourmetgram:kserveScaleMetric: kserveMode Serverless scales on concurrency or rps/,
    );
    const raw = { kserveMode: 'RawDeployment', kserveMinReplicas: 1, kserveScaleMetric: '' };
    assert.equal(parse('kserve', raw).kserve?.scaleMetric, 'cpu');
    assert.throws(
      () => parse('kserve', { ...raw, kserveCanaryTrafficPercent: 20 }),
      /gourmetgram:kserveCanaryTrafficPercent: .*RawDeployment does not have/,
    );
    assert.equal(parse('kserve', { kserveCanaryTrafficPercent: 20 }).kserve?.canaryTrafficPercent, 20);
    assert.throws(() => parse('kserve', { kserveCanaryTrafficPercent: 120 }), /kserveCanaryTrafficPercent/);
    assert.equal(parse('kserve', { kserveScaleTarget: 4 }).kserve?.scaleTarget, 4);
  });

  it('kserve: a Serverless predictor cannot mount the model volume without a Knative feature flag', () => {
    assert.throws(
      () => parse('kserve', { modelSource: 'volume' }),
      /gourmetgram:modelSource: Knative refuses volume claims/,
    );
  });

  it('gkeMode: standard or autopilot; spot and an existing cluster are ignored under Autopilot, said so', () => {
    assert.throws(() => parse('hpa', { gkeMode: 'serverless' }), /gourmetgram:gkeMode/);
    assert.equal(parse('hpa', { gkeMode: 'autopilot' }).cluster.gcp.mode, 'autopilot');
    assert.match(parse('hpa', { gkeMode: 'autopilot', spotNodes: true }).warnings.join('\n'), /spotNodes/);
    assert.match(
      parseConfig(stackConfig('dev', { gkeMode: 'autopilot' }), 'dev').warnings.join('\n'),
      /gkeMode autopilot applies to a cluster this stack creates/,
    );
  });
});

describe('configuration that deploys, with a warning', () => {
  it('replicas under hpa, and a one-node volume under several pods', () => {
    const config = parseConfig(
      stackConfig('hpa', { gcpProject: 'p', replicas: 3, modelSource: 'volume' }),
      'hpa',
    );
    assert.equal(config.classifier.replicas, undefined);
    assert.equal(config.warnings.length, 2);
    assert.match(config.warnings.join('\n'), /replicas \(3\) is ignored/);
    assert.match(config.warnings.join('\n'), /ReadWriteOnce/);
  });
});

describe('the schema check the stack tests rely on', () => {
  it('rejects a malformed Deployment', () => {
    const malformed = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      spec: { replicas: 'five', selector: {}, template: {} },
    };
    assert.throws(() => new Deployment(malformed as never).validate());
  });
});

describe('docs/configuration.md', () => {
  it('documents every config key in the stacks table', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## The stacks'));
    for (const key of CONFIG_KEYS) assert.match(section, new RegExp(`^\\| \`${key}\` \\|`, 'm'), key);
  });
});

describe('the labels database keys', () => {
  const parse = (stack: string, overrides: Record<string, string | number | boolean>) =>
    parseConfig(stackConfig(stack, { gcpProject: 'p', ...overrides }), stack);

  it('in the cluster by default, protected; an existing server when databaseUrl is set', () => {
    const defaults = parse('k8s', {}).database;
    assert.equal(defaults.server, 'in-cluster');
    assert.equal(defaults.protect, true);
    assert.equal(defaults.image, 'postgres:17.6');
    const existing = parse('docker', { databaseUrl: 'postgresql://u:p@db.example:5432/labels' }).database;
    assert.equal(existing.server, 'external');
    assert.equal(existing.externalUrl, 'postgresql://u:p@db.example:5432/labels');
  });

  it('a databaseUrl that is not a PostgreSQL URL is refused without echoing it: it holds a password', () => {
    assert.throws(
      () => parse('dev', { databaseUrl: 'mysql://user:hunter2@db:3306/labels' }),
      (error: Error) => {
        assert.match(
          error.message,
          /gourmetgram:databaseUrl: must be empty .*postgres:\/\/user:password@host/,
        );
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
  });

  it('cloudsql only beside a GKE cluster this stack creates, and not with databaseUrl too', () => {
    assert.equal(parse('k8s', { databaseServer: 'cloudsql' }).database.server, 'cloudsql');
    assert.throws(
      () => parse('dev', { databaseServer: 'cloudsql' }),
      /gourmetgram:databaseServer: cloudsql peers a Cloud SQL instance with the network of the GKE cluster/,
    );
    assert.throws(
      () => parse('docker', { databaseServer: 'cloudsql' }),
      /gourmetgram:databaseServer: cloudsql peers/,
    );
    assert.throws(
      () => parse('k8s', { databaseServer: 'cloudsql', databaseUrl: 'postgres://u:p@h:5432/d' }),
      /gourmetgram:databaseServer: databaseUrl names an existing server.*pulumi config rm databaseUrl/,
    );
  });

  it('the service label settings: empty (its defaults) or numbers in range', () => {
    assert.equal(parse('dev', {}).classifier.env.labelSampleRate, '');
    assert.equal(parse('dev', { labelSampleRate: '0.2' }).classifier.env.labelSampleRate, '0.2');
    assert.throws(
      () => parse('dev', { labelSampleRate: '1.5' }),
      /gourmetgram:labelSampleRate: .*from 0 to 1/,
    );
    assert.throws(() => parse('dev', { labelRetentionDays: '7.5' }), /gourmetgram:labelRetentionDays/);
    assert.throws(
      () => parse('dev', { databaseImage: 'postgres' }),
      /gourmetgram:databaseImage: .*with a tag/,
    );
    assert.throws(() => parse('dev', { databaseMemory: 'lots' }), /gourmetgram:databaseMemory/);
  });

  it('warns when databaseUrl is stored in plain text in the stack file, not when it is encrypted', () => {
    const raw = { databaseUrl: 'postgres://u:p@db.example:5432/labels' };
    pulumi.runtime.setAllConfig({ 'gourmetgram:databaseUrl': raw.databaseUrl }, []);
    assert.match(plaintextSecretWarnings(raw).join('\n'), /pulumi config set --secret databaseUrl/);
    pulumi.runtime.setAllConfig({ 'gourmetgram:databaseUrl': raw.databaseUrl }, ['gourmetgram:databaseUrl']);
    assert.deepEqual(plaintextSecretWarnings(raw), []);
    assert.deepEqual(plaintextSecretWarnings({}), [], 'nothing to say when it is not set');
  });

  it('warns that localhost in databaseUrl is the pod itself', () => {
    const config = parse('dev', { databaseUrl: 'postgres://u:p@localhost:5432/labels' });
    assert.match(config.warnings.join('\n'), /databaseUrl names localhost, which inside a pod/);
  });
});
