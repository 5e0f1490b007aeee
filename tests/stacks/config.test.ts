// The typed configuration: Pulumi.yaml and stacks/config.ts agree, the committed stack files parse, and bad
// values fail with a message that names the key and the fix.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1';
import { CONFIG_KEYS, configFields, parseConfig } from '../../stacks/config';
import { ROOT, readProjectFile, readStackFile, stackConfig } from './harness';

const declaredType = (value: unknown) =>
  Array.isArray(value) ? 'array' : typeof value === 'number' ? 'integer' : typeof value;

describe('Pulumi.yaml and stacks/config.ts', () => {
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
    for (const stack of ['dev', 'k8s', 'lb', 'hpa']) {
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
    const bad = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      spec: { replicas: 'five', selector: {}, template: {} },
    };
    assert.throws(() => new Deployment(bad as never).validate());
  });
});

describe('README', () => {
  it('documents every config key in the Deploy to Kubernetes table', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Deploy to Kubernetes'));
    for (const key of CONFIG_KEYS) assert.match(section, new RegExp(`^\\| \`${key}\` \\|`, 'm'), key);
  });
});
