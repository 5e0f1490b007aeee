/**
 * npm run monitor -- [--namespace <ns>] [--selector <labels>] [--instance <stack>] [--interval 5] [--duration <s>]
 *                    [--out <file>] [--docker [host]]
 *
 * Samples the classifier pods' replicas, requests, limits and usage every few seconds into the course's CSV
 * (with --docker: the container of the docker stack on a Docker host, in the same columns).
 * Runs until --duration or Ctrl-C; every row is written as it is taken. Exit code 2: cluster unreachable.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { ClusterUnreachableError, ResourceSampler } from './cluster';
import { DockerSampler, DockerUnreachableError } from './docker';
import { RESOURCE_COLUMNS, type ResourceSample } from './sample';

const DEFAULT_SELECTOR = 'app.kubernetes.io/name=gourmetgram,app.kubernetes.io/component=classifier';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

const HEADER = stringify([], { header: true, columns: [...RESOURCE_COLUMNS] });

function toCsv(sample: ResourceSample): string {
  return stringify([sample], { columns: [...RESOURCE_COLUMNS], cast: { number: (n) => String(n) } });
}

/** Appends to a file that already holds our header (a monitor restarted mid-run), else starts it. */
function prepareOut(file: string): void {
  mkdirSync(dirname(file), { recursive: true }); // the run directory may not exist until the load test starts
  if (existsSync(file)) {
    const fd = openSync(file, 'r');
    const buf = Buffer.alloc(HEADER.length);
    readSync(fd, buf, 0, HEADER.length, 0);
    closeSync(fd);
    if (buf.toString() === HEADER) return;
  }
  writeFileSync(file, HEADER);
}

interface Options {
  namespace: string;
  selector: string;
  instance?: string;
  interval: number;
  duration?: number;
  out?: string;
  kubeconfig?: string;
  context?: string;
  docker?: string | boolean;
}

function parseArguments(): Options {
  return new Command('monitor')
    .description('Samples the GourmetGram pods (replicas, CPU/memory requested, limited, used) into a CSV')
    .option('--namespace <ns>', 'namespace the stack deployed to', 'gourmetgram')
    .option('--selector <labels>', 'label selector for the classifier pods', DEFAULT_SELECTOR)
    .option('--instance <stack>', 'only this stack (adds app.kubernetes.io/instance=<stack> to the selector)')
    .option('--interval <seconds>', 'seconds between samples', positiveNumber, 5)
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)', positiveNumber)
    .option('--out <file>', 'CSV to write (default: stdout)')
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option(
      '--docker [host]',
      "sample the docker stack's container instead of pods: unix:///…/docker.sock or tcp://host:port " +
        '(default: $DOCKER_HOST, else the local socket)',
    )
    .parse()
    .opts<Options>();
}

const warn = (message: string) => console.error(`monitor: ${message}`);

/** The pods' sampler, or the Docker container's with --docker; throws when its client cannot be set up. */
function createSampler(opts: Options, selector: string): ResourceSampler | DockerSampler {
  return opts.docker
    ? new DockerSampler({ host: typeof opts.docker === 'string' ? opts.docker : undefined, selector }, warn)
    : new ResourceSampler(
        { kubeconfig: opts.kubeconfig, context: opts.context, namespace: opts.namespace, selector },
        warn,
      );
}

/** The CSV's destination: the --out file (created with its header) or stdout. */
function csvWriter(out: string | undefined): (text: string) => void {
  if (!out) {
    process.stdout.write(HEADER);
    return (text) => process.stdout.write(text);
  }
  prepareOut(out);
  return (text) => appendFileSync(out, text);
}

/**
 * Samples on the interval's grid until --duration or a signal; returns the exit code. A cluster that cannot be
 * reached before the first sample ends the run (2); later failures skip their sample.
 */
async function sampleUntilStopped(
  sampler: ResourceSampler | DockerSampler,
  write: (text: string) => void,
  opts: Options,
  what: string,
): Promise<number> {
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
  const startedAt = Date.now();
  const endAt = opts.duration ? startedAt + opts.duration * 1000 : Infinity;
  let taken = 0;
  for (let tick = 0; !stop.signal.aborted; tick++) {
    const due = startedAt + tick * opts.interval * 1000;
    if (due > endAt) break;
    // A slow API answer skips the sample it overran rather than bunching samples up.
    if (Date.now() > due + opts.interval * 1000) continue;
    try {
      await sleep(Math.max(0, due - Date.now()), undefined, { signal: stop.signal });
    } catch {
      break;
    }
    try {
      const sample = await sampler.sample();
      write(toCsv(sample));
      if (taken === 0 && sample.n_replica === 0) {
        warn(
          `nothing matches ${what} yet; check --instance${opts.docker ? ' and --docker' : '/--namespace'} ` +
            '(every object of a stack carries app.kubernetes.io/instance=<stack>; a kserve stack scaled to ' +
            'zero has no pod until a request comes)',
        );
      }
      taken++;
    } catch (err) {
      if ((err instanceof ClusterUnreachableError || err instanceof DockerUnreachableError) && taken === 0) {
        warn(err.message);
        return 2;
      }
      warn(`sample skipped: ${(err as Error).message}`);
    }
  }
  warn(`${taken} samples written`);
  return 0;
}

async function main(): Promise<number> {
  const opts = parseArguments();
  const selector = opts.instance
    ? `${opts.selector},app.kubernetes.io/instance=${opts.instance}`
    : opts.selector;
  let sampler: ResourceSampler | DockerSampler;
  try {
    sampler = createSampler(opts, selector);
  } catch (err) {
    warn((err as Error).message);
    return 2;
  }
  const write = csvWriter(opts.out);
  const what = opts.docker ? `containers "${selector}"` : `pods "${selector}" in namespace ${opts.namespace}`;
  warn(
    `${what} on ${sampler.server}, every ${opts.interval} s` +
      `${opts.duration ? ` for ${opts.duration} s` : ' until Ctrl-C'} → ${opts.out ?? 'stdout'}`,
  );
  return sampleUntilStopped(sampler, write, opts, what);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('monitor failed:', err);
    process.exit(1);
  },
);
