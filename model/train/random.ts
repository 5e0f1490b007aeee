/**
 * mulberry32: a small seeded uniform [0, 1) generator. Everything in evaluation that draws at random (the looks'
 * noise, the gate's bootstrap) draws from it, so a report is the same on every run and every machine.
 */
export function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
