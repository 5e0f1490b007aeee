import http from 'node:http';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { ServiceStatus } from '../http/app';
import { serviceScript, startThread } from './threads';

/**
 * The internal listener (METRICS_PORT): /metrics for Prometheus and /healthz, /readyz for the kubelet, served
 * by a thread of its own. Under overload the main event loop is busy with every connection the clients open,
 * and a probe waiting its turn there takes hundreds of milliseconds; on its own event loop it is answered at
 * once. It still tells the truth about the main loop: the main thread stamps a heartbeat into shared memory
 * every HEARTBEAT_MS, and /healthz fails when that stamp is older than the stall limit (a frozen event loop
 * is a dead process, whichever thread answers). The Service never exposes this port.
 */

const HEARTBEAT_MS = 250;
/** The state shared with the thread: [heartbeat ms, ready, model loaded, draining, labels store]. */
const SLOTS = { heartbeat: 0, ready: 1, modelLoaded: 2, draining: 3, labelsStore: 4 } as const;
/** The labels store's states, by their number in the shared memory. */
const LABELS_STATES: readonly ServiceStatus['labelsStore'][] = ['off', 'opening', 'open', 'unavailable'];

interface InternalInit {
  host: string;
  port: number;
  state: SharedArrayBuffer;
  stallMs: number;
}

type ToThread =
  { type: 'metrics'; id: number; text: string; contentType: string } | { type: 'metrics-failed'; id: number };
type FromThread =
  { type: 'listening'; port: number } | { type: 'scrape'; id: number } | { type: 'error'; message: string };

export interface InternalServerOptions {
  host: string;
  port: number;
  /** /healthz fails once the main event loop has not stamped its heartbeat for this long */
  stallMs: number;
  status(): ServiceStatus;
  metrics(): Promise<{ text: string; contentType: string }>;
}

/** Starts the thread; resolves with the port it listens on, rejects when it cannot listen. */
export function startInternalServer(
  options: InternalServerOptions,
): Promise<{ port: number; update(): void }> {
  const state = new SharedArrayBuffer(5 * BigInt64Array.BYTES_PER_ELEMENT);
  const shared = new BigInt64Array(state);
  const update = () => {
    const status = options.status();
    Atomics.store(shared, SLOTS.heartbeat, BigInt(Date.now()));
    Atomics.store(shared, SLOTS.ready, status.ready ? 1n : 0n);
    Atomics.store(shared, SLOTS.modelLoaded, status.modelLoaded ? 1n : 0n);
    Atomics.store(shared, SLOTS.draining, status.draining ? 1n : 0n);
    Atomics.store(shared, SLOTS.labelsStore, BigInt(LABELS_STATES.indexOf(status.labelsStore)));
  };
  update();
  const beat = setInterval(update, HEARTBEAT_MS);
  beat.unref();
  const thread = startThread(serviceScript('process/internal-server'), {
    host: options.host,
    port: options.port,
    state,
    stallMs: options.stallMs,
  });
  return new Promise((resolve, reject) => {
    thread.on('message', (m: FromThread) => {
      if (m.type === 'listening') {
        // Once listening, the thread must not keep the process alive on its own: the main thread decides when
        // to exit. (Not before: until then nothing else may be holding the process open.)
        thread.unref();
        resolve({ port: m.port, update });
      } else if (m.type === 'error') reject(new Error(m.message));
      else if (m.type === 'scrape') {
        options.metrics().then(
          ({ text, contentType }) =>
            thread.postMessage({ type: 'metrics', id: m.id, text, contentType } satisfies ToThread),
          () => thread.postMessage({ type: 'metrics-failed', id: m.id } satisfies ToThread),
        );
      }
    });
    thread.on('error', reject);
  });
}

/** The thread itself. */
function serve(init: InternalInit, port: NonNullable<typeof parentPort>): void {
  const shared = new BigInt64Array(init.state);
  const flag = (slot: number) => Atomics.load(shared, slot) === 1n;
  const scrapes = new Map<number, (m: ToThread) => void>();
  let nextId = 1;
  port.on('message', (m: ToThread) => {
    scrapes.get(m.id)?.(m);
    scrapes.delete(m.id);
  });
  const json = (res: http.ServerResponse, status: number, body: unknown) =>
    res
      .writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify(body));

  const server = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET') {
      json(res, 405, { error: 'Only GET is served here.' });
      return;
    }
    if (url === '/healthz') {
      const sinceBeatMs = Date.now() - Number(Atomics.load(shared, SLOTS.heartbeat));
      if (sinceBeatMs > init.stallMs) json(res, 503, { status: 'stalled', eventLoopStalledMs: sinceBeatMs });
      else json(res, 200, { status: 'alive' });
      return;
    }
    if (url === '/readyz') {
      const ready = flag(SLOTS.ready);
      json(res, ready ? 200 : 503, {
        ready,
        modelLoaded: flag(SLOTS.modelLoaded),
        draining: flag(SLOTS.draining),
        labelsStore: LABELS_STATES[Number(Atomics.load(shared, SLOTS.labelsStore))] ?? 'off',
      } satisfies ServiceStatus);
      return;
    }
    if (url === '/metrics') {
      const id = nextId++;
      // A scrape waits for the main thread, which may be busy; Prometheus's own timeout is about 10 s.
      const timer = setTimeout(() => {
        scrapes.delete(id);
        json(res, 503, { error: 'The metrics could not be collected in time.' });
      }, 8000);
      scrapes.set(id, (m) => {
        clearTimeout(timer);
        if (m.type === 'metrics') res.writeHead(200, { 'Content-Type': m.contentType }).end(m.text);
        else json(res, 500, { error: 'The metrics could not be collected.' });
      });
      port.postMessage({ type: 'scrape', id } satisfies FromThread);
      return;
    }
    json(res, 404, { error: 'Only /metrics, /healthz and /readyz are served here.' });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.on('error', (err) => port.postMessage({ type: 'error', message: err.message } satisfies FromThread));
  server.listen(init.port, init.host, () => {
    const address = server.address();
    const listening = typeof address === 'object' && address ? address.port : init.port;
    port.postMessage({ type: 'listening', port: listening } satisfies FromThread);
  });
}

if (!isMainThread && parentPort && (workerData as Partial<InternalInit> | undefined)?.state) {
  serve(workerData as InternalInit, parentPort);
}
