/**
 * Works on a layers model's JSON topology before TF.js builds it: finds the functional network, keeps only what the
 * requested layers need, and rebuilds its input size.
 */

export interface LayerEntry {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name?: string };
  inbound_nodes?: unknown[];
}

export interface FunctionalConfig extends Record<string, unknown> {
  layers: (LayerEntry & { name: string })[];
  input_layers: [string, number, number][];
  output_layers: [string, number, number][];
}

const FUNCTIONAL = new Set(['Model', 'Functional']);

/** The functional (Keras 'Model') network a layers model.json holds, as model/train/finetune.py exports it. */
export function findFunctionalConfig(topology: Record<string, unknown>): FunctionalConfig {
  const entry = (topology['model_config'] ?? topology) as LayerEntry;
  if (!FUNCTIONAL.has(entry.class_name)) {
    throw new Error(
      `The model is a ${entry.class_name} '${entry.config.name ?? entry.name ?? '?'}', not a functional ` +
        "(Keras 'Model') network; cannot find named layers in it.",
    );
  }
  return entry.config as FunctionalConfig;
}

/** Names of the layers a tensor-producing entry reads from (Keras JSON: [[[layer, node, tensor, kwargs], …], …]). */
export function inboundLayerNames(layer: LayerEntry): string[] {
  const names: string[] = [];
  const walk = (v: unknown): void => {
    if (!Array.isArray(v)) return;
    if (typeof v[0] === 'string' && typeof v[1] === 'number') names.push(v[0]);
    else v.forEach(walk);
  };
  walk(layer.inbound_nodes ?? []);
  return names;
}

/**
 * The functional config cut so that its outputs are the requested layers, in order, holding only the layers they
 * depend on (a classifier head past them may not even build at another input size), with its input at inputSize.
 */
export function prunedConfig(
  topology: Record<string, unknown>,
  outputLayers: string[],
  inputSize: number,
): FunctionalConfig {
  const config = structuredClone(findFunctionalConfig(topology));
  const byName = new Map(config.layers.map((l) => [l.name, l]));
  for (const name of outputLayers) {
    if (!byName.has(name)) {
      const last = config.layers
        .slice(-4)
        .map((l) => l.name)
        .join(', ');
      throw new Error(
        `The model has no layer '${name}' (it has ${config.layers.length} layers, ending ${last}).`,
      );
    }
  }
  const needed = new Set<string>();
  const stack = [...outputLayers];
  while (stack.length > 0) {
    const name = stack.pop() as string;
    if (needed.has(name)) continue;
    needed.add(name);
    const layer = byName.get(name);
    if (layer) stack.push(...inboundLayerNames(layer));
  }
  if (config.input_layers.length !== 1) throw new Error('The model must have exactly one image input.');
  const inputName = config.input_layers[0]?.[0] as string;
  const input = byName.get(inputName);
  if (!input || input.class_name !== 'InputLayer') throw new Error(`Input layer '${inputName}' not found.`);
  const shape = input.config['batch_input_shape'] as (number | null)[] | undefined;
  // The nets are fully convolutional up to the cut, so only the input layer names a size.
  input.config['batch_input_shape'] = [null, inputSize, inputSize, shape?.[3] ?? 3];

  if (!needed.has(inputName)) {
    throw new Error(
      `Cannot trace layers ${outputLayers.join(', ')} back to the input '${inputName}': the topology's ` +
        'inbound_nodes are in a format this loader does not read (a Keras 2 / TF.js layers export is expected).',
    );
  }
  config.layers = config.layers.filter((l) => needed.has(l.name));
  config.output_layers = outputLayers.map((name) => [name, 0, 0]);
  return config;
}
