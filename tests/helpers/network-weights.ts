import { promises as fs } from 'node:fs';
import path from 'node:path';

/** A TF.js layers model's weights by name, in the manifest's order (float32 files only, as the tests write). */
export async function networkWeights(dir: string): Promise<Map<string, Float32Array>> {
  const model = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')) as {
    weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[];
  };
  const weights = new Map<string, Float32Array>();
  for (const group of model.weightsManifest) {
    const blob = Buffer.concat(await Promise.all(group.paths.map((p) => fs.readFile(path.join(dir, p)))));
    let offset = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      weights.set(
        w.name,
        new Float32Array(blob.buffer.slice(blob.byteOffset + offset, blob.byteOffset + offset + 4 * count)),
      );
      offset += 4 * count;
    }
  }
  return weights;
}
