/** Index of the largest value in each row of a flat rows × classes array. */
export function argmaxRows(probs: Float32Array, classes: number): Int32Array {
  const rows = probs.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[r * classes + c]! > probs[r * classes + best]!) best = c;
    out[r] = best;
  }
  return out;
}
