// Kubernetes resource quantities ("500m", "1.5Gi", "123456789n") in base units, cores or bytes: one grammar for
// the Pulumi program, which compares a request with its limit and sizes the worker pool before anything reaches
// the cluster, and for the monitor (tools/monitor/), which sums what the API server and metrics-server report.
// @kubernetes/client-node has a parser but does not export it from its package root (v1.4), and it rejects
// legal fractional binary forms such as "1.5Gi"; the grammar is small enough to state here in full. Free of
// imports, so the tools can use it without pulling in Pulumi.

/** Suffixes below one are divided by, not multiplied by an inexact 0.001: "500m" is exactly 0.5. */
const DIVISOR: Record<string, number> = { n: 1e9, u: 1e6, m: 1e3 };
const MULTIPLIER: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A signed decimal number (".5", "1.", "1e3" too), then the suffix's letters. */
const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)$/;

interface Form {
  /** the numbers this form takes */
  number: RegExp;
  /** the suffixes it takes */
  suffixes: readonly string[];
}

/** Everything the API server may write. */
const ANY: Form = { number: /./, suffixes: [...Object.keys(DIVISOR), ...Object.keys(MULTIPLIER)] };

// The config keys take the plain forms people write (`500m`, `1.5`, `384Mi`): no sign, exponent or bare point,
// and for CPU no suffix but m, so a memory size given as a CPU limit is caught here. Memory has always taken
// `K` as well, which Kubernetes itself does not.
const PLAIN = /^\d+(?:\.\d+)?$/;
const CPU: Form = { number: PLAIN, suffixes: ['', 'm'] };
const MEMORY: Form = { number: PLAIN, suffixes: ['', 'k', 'K', 'M', 'G', 'T', 'Ki', 'Mi', 'Gi', 'Ti'] };

function parse(text: string, form: Form): number | undefined {
  const match = QUANTITY.exec(text);
  const [, number = '', suffix = ''] = match ?? [];
  if (!match || !form.number.test(number) || !form.suffixes.includes(suffix)) return undefined;
  const value = Number(number);
  const divisor = DIVISOR[suffix];
  if (divisor !== undefined) return value / divisor;
  // `K` is the config's spelling of `k`
  return value * (MULTIPLIER[suffix === 'K' ? 'k' : suffix] as number);
}

/** Base units (cores or bytes) of any quantity the API server writes, or undefined when the text is not one. */
export function parseQuantity(text: string): number | undefined {
  return parse(text.trim(), ANY);
}

/** Cores, or undefined when the text is not a CPU quantity (`500m`, `1`, `1.5`). */
export function parseCpu(text: string): number | undefined {
  return parse(text, CPU);
}

/** Bytes, or undefined when the text is not a memory quantity (`384Mi`, `2Gi`, `512M`). */
export function parseMemory(text: string): number | undefined {
  return parse(text, MEMORY);
}

/** A memory quantity in whole MiB, the unit a Docker engine's limits and tmpfs sizes take; 0 when unreadable. */
export function mebibytes(text: string): number {
  return Math.floor((parseMemory(text) ?? 0) / 2 ** 20);
}
