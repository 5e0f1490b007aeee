// KServe's InferenceService checked against its own CRD's openAPIV3Schema (vendored in tests/fixtures/kserve),
// with ajv, the way kubernetes-models checks the built-in kinds.
//
// A structural CRD schema does not forbid unknown fields: the API server drops them (or, with kubectl's
// strict field validation, refuses them). A misspelt `canaryTrafficPrecent` would then vanish without a
// word, so every object schema that lists its properties is closed here, as strict validation would.

import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import YAML from 'yaml';

const CRD_FILE = path.join(__dirname, '..', 'fixtures', 'kserve', 'serving.kserve.io_inferenceservices.yaml');

type Schema = Record<string, unknown>;

function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema as Schema)) {
    // `properties` maps names to schemas; its keys are field names, not keywords.
    out[key] =
      key === 'properties'
        ? Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, closeObjects(v)]))
        : closeObjects(value);
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out['x-kubernetes-preserve-unknown-fields']
  ) {
    out.additionalProperties = false;
  }
  return out;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const crd = YAML.parse(fs.readFileSync(CRD_FILE, 'utf8')) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  const version = crd.spec.versions.find((v) => v.name === 'v1beta1');
  if (!version) throw new Error(`${CRD_FILE} has no v1beta1 version`);
  // strict: false, for the x-kubernetes-* keywords Kubernetes adds to JSON Schema.
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The OpenAPI formats Kubernetes uses.
  ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isSafeInteger(n) });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  ajv.addFormat('date-time', { type: 'string', validate: (s) => !Number.isNaN(Date.parse(s)) });
  compiled = ajv.compile(closeObjects(version.schema.openAPIV3Schema) as Schema);
  return compiled;
}

/** Shaped like a kubernetes-models class, so the stack tests' SCHEMAS map takes it alongside them. */
export class InferenceService {
  constructor(private readonly data: Record<string, unknown>) {}

  validate(): void {
    if (this.data.apiVersion !== 'serving.kserve.io/v1beta1' || this.data.kind !== 'InferenceService') {
      throw new Error(`not a serving.kserve.io/v1beta1 InferenceService: ${String(this.data.apiVersion)}`);
    }
    const validate = validator();
    if (!validate(this.data)) {
      const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
      throw new Error(`InferenceService does not match KServe's CRD:\n  ${errors.join('\n  ')}`);
    }
  }
}
