/**
 * The TF.js backends a process may ask for; 'auto' takes the native binding when it is installed, else wasm. Apart
 * from backend.ts, which loads TF.js, so that reading a configuration does not: the service's main thread never runs
 * a model, and TF.js with its wasm backend held ~15 MB of its heap there (issue 24).
 */
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
