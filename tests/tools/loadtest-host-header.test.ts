// A kserve stack's url names a virtual host that the cluster's ingress (Kourier, Istio) routes by the Host
// header; without DNS for it, the load test goes to the ingress address with --host-header. Here a stand-in
// ingress on 127.0.0.1 answers only for that name, as Kourier does.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runLoadTest } from '../../tools/loadtest/run-load-test';
import { BadTargetError } from '../../tools/loadtest/target';
import type { Profile } from '../../tools/loadtest/profile';

const HOST = 'gourmetgram.gourmetgram.example.com';
const profile: Profile = { name: 'tiny', stages: [{ users: 2, delaySeconds: 0, durationSeconds: 0.5 }] };

describe('load test through an ingress that routes by host name', () => {
  let server: Server;
  let url: string;
  const hosts = new Set<string | undefined>();
  before(async () => {
    server = createServer((req, res) => {
      hosts.add(req.headers.host);
      const routed = req.headers.host === HOST;
      res.writeHead(routed ? 200 : 404, { 'content-type': 'application/json' });
      res.end(routed ? '{"label":"Soup"}' : '');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the Host header on the preflight, every request and the model read', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'gg-host-')), 'kserve');
    const result = await runLoadTest({
      url,
      path: '/test',
      profile,
      outDir,
      timeoutMs: 2000,
      keepAlive: false,
      hostHeader: HOST,
    });
    assert.ok(result.requests > 0);
    assert.equal(result.ok, result.requests, 'every request was routed');
    assert.deepEqual([...hosts], [HOST]);
    const meta = JSON.parse(readFileSync(join(outDir, 'run.json'), 'utf8')) as { hostHeader: string };
    assert.equal(meta.hostHeader, HOST);
  });

  it('refuses a whole url as the host name before sending anything', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'gg-host-')), 'kserve');
    const before = hosts.size;
    await assert.rejects(
      runLoadTest({
        url,
        path: '/test',
        profile,
        outDir,
        timeoutMs: 2000,
        keepAlive: false,
        hostHeader: `http://${HOST}`,
      }),
      (err: unknown) =>
        err instanceof BadTargetError &&
        /--host-header "http:.*" is not a host name/.test((err as Error).message),
    );
    assert.equal(hosts.size, before);
  });

  it('without it the ingress answers 404 and the preflight says so at once', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'gg-host-')), 'kserve');
    await assert.rejects(
      runLoadTest({ url, path: '/test', profile, outDir, timeoutMs: 2000, keepAlive: false }),
      (err: unknown) => err instanceof BadTargetError && /HTTP 404/.test((err as Error).message),
    );
  });
});
