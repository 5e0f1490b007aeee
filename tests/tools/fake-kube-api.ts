import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURES = join(__dirname, '..', 'fixtures', 'tools', 'k8s');
export const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

export interface FakeKubeApi {
  kubeconfig: string;
  requests: { path: string; labelSelector: string | null; authorization: string | undefined }[];
  /** what the metrics API answers: the recorded list, or the 404 a cluster without metrics-server gives */
  metrics: 'ok' | 'missing';
  podsStatus: number;
  close(): Promise<void>;
}

/**
 * A stand-in API server on 127.0.0.1 that serves the fixture answers, so the tests exercise the real
 * @kubernetes/client-node (kubeconfig loading, URL building, auth header, error mapping) end to end.
 */
export async function startFakeKubeApi(namespace = 'gourmetgram'): Promise<FakeKubeApi> {
  const api: FakeKubeApi = {
    kubeconfig: '',
    requests: [],
    metrics: 'ok',
    podsStatus: 200,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    api.requests.push({
      path: url.pathname,
      labelSelector: url.searchParams.get('labelSelector'),
      authorization: req.headers.authorization,
    });
    if (url.pathname === `/api/v1/namespaces/${namespace}/pods`) {
      if (api.podsStatus !== 200) {
        return send(res, api.podsStatus, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: `pods is forbidden: User "fixture" cannot list resource "pods" in the namespace "${namespace}"`,
          reason: 'Forbidden',
          code: api.podsStatus,
        });
      }
      return send(res, 200, fixture('pods.json'));
    }
    if (url.pathname === `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods`) {
      return api.metrics === 'ok'
        ? send(res, 200, fixture('pod-metrics.json'))
        : send(res, 404, fixture('not-found.json'));
    }
    send(res, 404, fixture('not-found.json'));
  });
  // client-node refuses plain http unless TLS verification is off; the fixture server has no certificate to verify
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'gg-kube-'));
  api.kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    api.kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fixture\n  cluster:\n    server: http://127.0.0.1:${port}\n    insecure-skip-tls-verify: true`,
      'users:',
      '- name: fixture\n  user:\n    token: fixture-token',
      'contexts:',
      `- name: fixture\n  context:\n    cluster: fixture\n    user: fixture\n    namespace: ${namespace}`,
      'current-context: fixture',
      '',
    ].join('\n'),
  );
  return api;
}
