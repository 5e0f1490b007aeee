// @kubernetes/client-node has a quantity parser but does not export it from its package root (v1.4), and it
// rejects legal fractional binary forms such as "1.5Gi"; the grammar is small enough to state here in full.
const SCALE: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
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

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/;

/** A Kubernetes quantity ("250m", "1", "123456789n", "512Mi", "1.5Gi", "1e3") in base units: cores or bytes. */
export function quantity(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  const m = QUANTITY.exec(text.trim());
  if (!m) throw new Error(`not a Kubernetes quantity: "${text}"`);
  return Number(m[1]) * (SCALE[m[2] ?? ''] as number);
}
