/** A tiny labelled photo set generated with sharp: a coloured shape per class on a noisy background. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { seededRandom } from '../../model/train/prng';

const SHAPES: Record<
  string,
  { colour: [number, number, number]; inside: (dx: number, dy: number, r: number) => boolean }
> = {
  Bread: { colour: [220, 40, 40], inside: (dx, dy, r) => dx * dx + dy * dy <= r * r },
  Egg: { colour: [40, 200, 60], inside: (dx, dy, r) => Math.abs(dx) <= r && Math.abs(dy) <= r },
  Rice: { colour: [50, 70, 230], inside: (dx, dy, r) => dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2 },
};
export const SHAPE_CLASSES = Object.keys(SHAPES);

export async function shapePhoto(cls: string, seed: number, size = 48): Promise<Buffer> {
  const shape = SHAPES[cls]!;
  const random = seededRandom(seed);
  const raw = Buffer.alloc(size * size * 3);
  const cx = size * (0.35 + random() * 0.3);
  const cy = size * (0.35 + random() * 0.3);
  const r = size * (0.18 + random() * 0.12);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const on = shape.inside(x - cx, y - cy, r);
      for (let c = 0; c < 3; c++) {
        const base = on ? shape.colour[c]! : 128;
        raw[i + c] = Math.max(0, Math.min(255, base + (random() - 0.5) * 80));
      }
    }
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** <root>/<Class>/<class>__<n>.jpg, `perClass` photos per class. */
export async function writeFolderDataset(
  root: string,
  perClass: number,
  classes = SHAPE_CLASSES,
): Promise<void> {
  for (const [k, cls] of classes.entries()) {
    await fs.mkdir(path.join(root, cls), { recursive: true });
    for (let n = 0; n < perClass; n++) {
      await fs.writeFile(
        path.join(root, cls, `${cls.toLowerCase()}__${n}.jpg`),
        await shapePhoto(cls, k * 1000 + n + 1),
      );
    }
  }
}

/** Food-11's own layout: training/, validation/, evaluation/ with <classIndex>_<n>.jpg. */
export async function writeFood11Dataset(root: string, perClassPerSplit: number): Promise<void> {
  const index: Record<string, number> = { Bread: 0, Egg: 3, Rice: 7 };
  for (const [s, split] of ['training', 'validation', 'evaluation'].entries()) {
    await fs.mkdir(path.join(root, split), { recursive: true });
    for (const cls of SHAPE_CLASSES) {
      for (let n = 0; n < perClassPerSplit; n++) {
        await fs.writeFile(
          path.join(root, split, `${index[cls]}_${n}.jpg`),
          await shapePhoto(cls, 50000 + s * 1000 + index[cls]! * 100 + n),
        );
      }
    }
  }
}
