import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** Hand-driven HTTP/1.1 exchanges, for what fetch cannot do: send a body slowly, in part, or after the answer. */

export interface RawExchange {
  socket: net.Socket;
  /** everything the server sent, once it closed the connection (or the wait ran out) */
  closed: Promise<{ text: string; ms: number; closedByServer: boolean }>;
  /** the first bytes of the server's answer, as soon as they come */
  firstAnswer: Promise<{ text: string; ms: number }>;
}

export interface RawOptions {
  /** give up (and close) after this long */
  waitMs?: number;
  /**
   * keep the client's side open when the server half-closes (a client that goes on sending after the answer);
   * by default the client closes as soon as the server does, as most clients do
   */
  allowHalfOpen?: boolean;
}

/** The head and whatever body the test chooses to send, when it chooses. */
export function rawRequest(port: number, head: string, options: RawOptions | number = {}): RawExchange {
  const { waitMs = 15_000, allowHalfOpen = false } =
    typeof options === 'number' ? { waitMs: options } : options;
  const started = performance.now();
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
  let text = '';
  let answered: (v: { text: string; ms: number }) => void;
  const firstAnswer = new Promise<{ text: string; ms: number }>((r) => (answered = r));
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    text += d;
    answered({ text, ms: performance.now() - started });
  });
  const closed = new Promise<{ text: string; ms: number; closedByServer: boolean }>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, ms: performance.now() - started, closedByServer: false });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: performance.now() - started, closedByServer: true });
    });
    socket.on('error', () => undefined);
  });
  socket.write(head);
  return { socket, closed, firstAnswer };
}
