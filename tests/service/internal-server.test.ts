import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { startInternalServer } from '../../service/src/process/internal-server';

// The internal listener answers from its own thread, yet its liveness tells the truth about the main event
// loop: frozen longer than the stall limit, /healthz fails (issue 12, item 9).

/** GET from another process after a delay, so the request is made while this process's loop is blocked. */
function probeLater(url: string, delayMs: number): Promise<string> {
  const script = `setTimeout(() => fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text()), (e) => console.log('error', e.message)), ${delayMs});`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => resolve(out.trim()));
  });
}

describe('internal server (metrics and probes on their own thread)', () => {
  it('serves readiness and metrics from the main thread, and fails liveness while the main loop is stuck', async () => {
    let ready = false;
    const internal = await startInternalServer({
      host: '127.0.0.1',
      port: 0,
      stallMs: 600,
      status: () => ({
        ready,
        modelLoaded: ready,
        draining: false,
        labelsStore: ready ? ('open' as const) : ('opening' as const),
      }),
      metrics: async () => ({ text: 'up 1\n', contentType: 'text/plain' }),
    });
    const url = `http://127.0.0.1:${internal.port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 503);
    ready = true;
    internal.update();
    assert.deepEqual(await (await fetch(`${url}/readyz`)).json(), {
      ready: true,
      modelLoaded: true,
      draining: false,
      labelsStore: 'open',
    });
    assert.equal(await (await fetch(`${url}/metrics`)).text(), 'up 1\n');
    assert.equal((await fetch(`${url}/test`)).status, 404);

    // Freeze this (the main) thread for 4 s; a probe arrives about 1.5 s in, when the heartbeat is that old.
    const answer = probeLater(`${url}/healthz`, 1500);
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      // busy: no timer, no heartbeat, no I/O on this thread
    }
    assert.match(await answer, /^503 .*stalled/);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive again once the loop runs');
  });
});
