import { initBackend, loadBackbone, type Backbone } from '../src';
import type { ParentMessage, WorkerMessage } from './extract';
import { asExtractor } from './extract';
import { extractChunk } from './feature-cache';

/** A forked process that extracts the feature chunks its parent hands it, one at a time. */
let backbone: Backbone | undefined;
let resize: 'cover' | 'fill' = 'cover';

function send(m: ParentMessage): void {
  process.send?.(m);
}

process.on('message', (m: WorkerMessage) => {
  void (async () => {
    try {
      if (m.type === 'init') {
        resize = m.resize;
        await initBackend('wasm');
        backbone = await loadBackbone(m.request.spec, {
          url: m.request.url,
          cacheDir: m.request.backboneCacheDir,
          expectedDigest: m.digest,
        });
        send({ type: 'ready' });
      } else if (m.type === 'chunk') {
        if (!backbone) throw new Error('chunk before init');
        await extractChunk(m.chunk, asExtractor(backbone, resize), m.variant, (images) =>
          send({ type: 'progress', images }),
        );
        send({ type: 'done' });
      } else {
        backbone?.dispose();
        process.exit(0);
      }
    } catch (err) {
      console.error(`Feature-extraction worker: ${(err as Error).message}`);
      process.exit(1);
    }
  })();
});
