// Kubernetes resource quantities, parsed only far enough to compare a request with its limit and to size
// the worker pool from the CPU limit before anything reaches the cluster.

const CPU = /^(\d+(?:\.\d+)?)(m?)$/;
const MEMORY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/;
const MEMORY_UNIT: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Cores, or undefined when the text is not a CPU quantity (`500m`, `1`, `1.5`). */
export function parseCpu(text: string): number | undefined {
  const match = CPU.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]);
  return match[2] === 'm' ? value / 1000 : value;
}

/** Bytes, or undefined when the text is not a memory quantity (`384Mi`, `2Gi`, `512M`). */
export function parseMemory(text: string): number | undefined {
  const match = MEMORY.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * (MEMORY_UNIT[match[2] ?? ''] ?? 1);
}
