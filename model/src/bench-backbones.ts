/**
 * Milliseconds per photo of a backbone's feature extraction (median of several timed runs after a warm-up), for
 * the model card's latency column. Run:
 *   npx tsx model/src/bench-backbones.ts [--backend wasm] [--engine fused,layers] [--rounds 5] [--url <clean url>]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from './backend';
import { loadBackbone, type Backbone } from './backbone';
import { CLEAN_BACKBONE, NPM_BACKBONE } from './backbone-spec';

export interface ExtractionTiming {
  batch: number;
  runs: number;
  /** Median over runs of (run time / batch). */
  medianMsPerPhoto: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export async function timeExtraction(
  backbone: Backbone,
  batch: number,
  runs: number,
): Promise<ExtractionTiming> {
  const size = backbone.spec.inputSize;
  const images = Array.from({ length: batch }, (_, k) =>
    Uint8Array.from({ length: size * size * 3 }, (_, i) => (i * 13 + k * 101) % 256),
  );
  await backbone.extract(images); // warm-up: kernels and memory are set up on the first pass
  const perPhoto: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    await backbone.extract(images);
    perPhoto.push((performance.now() - start) / batch);
  }
  return { batch, runs, medianMsPerPhoto: median(perPhoto) };
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const backend = await initBackend((arg('--backend') ?? 'wasm') as BackendName);
  const url = arg('--url');
  const engines = (arg('--engine') ?? 'fused,layers').split(',') as ('fused' | 'layers')[];
  const rounds = Number(arg('--rounds') ?? 5);
  const specs = url ? [CLEAN_BACKBONE, NPM_BACKBONE] : [NPM_BACKBONE];
  if (!url) console.log('(no --url: the clean backbone is skipped)');
  for (const spec of specs) {
    const backbones = await Promise.all(
      engines.map((engine) => loadBackbone(spec, { url: spec.kind === 'layers' ? url : undefined, engine })),
    );
    for (const batch of [1, 8]) {
      // Engines take turns round by round, so a noisy machine slows them alike and their ratio stays fair.
      const perEngine = backbones.map(() => [] as number[]);
      for (let r = 0; r < rounds; r++) {
        for (const [i, b] of backbones.entries()) {
          perEngine[i]?.push((await timeExtraction(b, batch, batch === 1 ? 5 : 2)).medianMsPerPhoto);
        }
      }
      backbones.forEach((b, i) =>
        console.log(
          `${backend}/${b.engine} ${spec.id} ${spec.inputSize}px layers=${spec.layers.join('+')} batch=${batch}: ` +
            `${median(perEngine[i] ?? []).toFixed(1)} ms/photo (median of ${rounds} interleaved rounds)`,
        ),
      );
    }
    backbones.forEach((b) => b.dispose());
  }
  console.log(`tensors left: ${tf.memory().numTensors}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exitCode = 1;
  });
}
