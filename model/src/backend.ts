import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendName } from './backend-names';

export { BACKENDS, type BackendName } from './backend-names';

/** Whether the native binding is installed; it is optional and absent on many machines. */
function tryLoadTfjsNode(): boolean {
  try {
    // Loading it registers the 'tensorflow' backend with the shared tfjs-core as a side effect; a static import
    // would make the optional package mandatory.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

function pointWasmAtItsFiles(): void {
  // In Node the wasm backend cannot guess where its .wasm files live; they sit next to its main script.
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(dist + path.sep);
}

let wasmPathsSet = false;

/**
 * Selects the TF.js backend for this process (or worker thread) and returns the one actually running.
 * 'auto' prefers the native tfjs-node binding and falls back to wasm.
 */
export async function initBackend(name: BackendName): Promise<string> {
  let wanted: Exclude<BackendName, 'auto'> = name === 'auto' ? 'wasm' : name;
  if (name === 'auto' || name === 'tensorflow') {
    if (tryLoadTfjsNode()) wanted = 'tensorflow';
    else if (name === 'tensorflow') {
      throw new Error(
        "TF.js backend 'tensorflow' was requested but @tensorflow/tfjs-node cannot be loaded here; " +
          "install it or choose 'wasm' or 'cpu' (TFJS_BACKEND).",
      );
    }
  }
  if (wanted === 'cpu') {
    // Registers the plain JavaScript backend: only loaded when asked for (tfjs-node and wasm need none of it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-cpu');
  }
  if (wanted === 'wasm' && !wasmPathsSet) {
    pointWasmAtItsFiles();
    wasmPathsSet = true;
  }
  // Production mode skips debug-only checks and the cpu backend's "install tfjs-node" banner, which would only
  // confuse a user who chose cpu or runs the fallback on purpose.
  tf.enableProdMode();
  const ok = await tf.setBackend(wanted);
  if (!ok) throw new Error(`TF.js backend '${wanted}' failed to initialise.`);
  await tf.ready();
  return tf.getBackend();
}
