import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeJpeg } from '../helpers/images';
import { IMAGE_MALLOC_ENV, startServer, type RunningServer } from '../../tools/shared/service-process';
import { labelsOpen, labelWithRetry } from '../helpers/labels-client';
import { FOOD11_DISPLAY_NAMES } from '../helpers/food11';

/**
 * There is no Docker engine here, so this test plays the image's build itself: it reads service/Dockerfile,
 * carries out its instructions against a temporary folder (each stage a fake filesystem root, COPY honouring
 * .dockerignore), then starts the image's CMD and talks to it. A file the Dockerfile forgets is missing from
 * that folder exactly as it would be from the image, so the service fails here as it would in a pod.
 *
 * Where the machine differs from a Docker build (said again where it happens):
 * - the build stage's full `npm ci` (dev dependencies, for tsc) is stood in for by this checkout's own
 *   node_modules, installed from the same lockfile;
 * - the runtime stage's `npm ci --omit=dev` really runs, with --ignore-scripts --prefer-offline: offline,
 *   @tensorflow/tfjs-node cannot fetch its libtensorflow, so the service falls back to wasm as it does on any
 *   machine without it;
 * - the build arg REQUIRE_TFJS_NODE=false turns the one network step (checking tfjs-node loads) into a no-op;
 *   the RUN lines themselves still run through sh.
 */

const repo = path.resolve(__dirname, '..', '..');
const dockerfilePath = path.join(repo, 'service', 'Dockerfile');
const BUILD_ARGS = { REQUIRE_TFJS_NODE: 'false' };

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile parsing

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}
interface Dockerfile {
  globalArgs: Instruction[];
  stages: Stage[];
}

function parseDockerfile(text: string): Dockerfile {
  const logical: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (!pending && (line.trim() === '' || line.trim().startsWith('#'))) return;
    if (pending && line.trim().startsWith('#')) return; // comments inside a continued instruction
    if (!pending) startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    if (m) logical.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: startLine });
  });
  const out: Dockerfile = { globalArgs: [], stages: [] };
  for (const ins of logical) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`);
      out.stages.push({ name: m[2] ?? String(out.stages.length), from: m[1]!, instructions: [] });
    } else if (out.stages.length === 0) {
      assert.equal(ins.op, 'ARG', `Dockerfile line ${ins.line}: only ARG may precede the first FROM`);
      out.globalArgs.push(ins);
    } else {
      out.stages.at(-1)!.instructions.push(ins);
    }
  }
  return out;
}

/** ${VAR}, ${VAR:-default} and $VAR, as Docker expands them in ENV, COPY, WORKDIR and FROM. */
function expand(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)/g,
    (_, braced: string, dflt: string, bare: string) => {
      const name = braced ?? bare;
      const v = vars[name];
      return v !== undefined && v !== '' ? v : (dflt ?? '');
    },
  );
}

/** Splits shell-like words, honouring double and single quotes (enough for ENV and COPY). */
function words(args: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function parseEnv(args: string, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  if (!args.includes('=')) {
    const [key, ...rest] = args.split(/\s+/);
    out[key!] = expand(rest.join(' '), vars);
    return out;
  }
  const re = /(\w+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) {
    const raw = m[2]!;
    const unquoted = /^["']/.test(raw) ? raw.slice(1, -1) : raw;
    out[m[1]!] = expand(unquoted, { ...vars, ...out });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore

function dockerignoreMatcher(contextDir: string): (relPath: string) => boolean {
  const file = path.join(contextDir, '.dockerignore');
  const rules = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, ''));
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => {
          if (part === '**/') return '(?:.*/)?';
          if (part === '**') return '.*';
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, re: new RegExp(`^${source}$`) };
    });
  return (relPath) => {
    // A pattern that matches a folder excludes everything inside it.
    const prefixes = relPath.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let ignored = false;
    for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) ignored = !rule.negate;
    return ignored;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Carrying out the instructions

interface StageResult {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  cmd?: string[];
  healthcheck?: string;
  expose: string[];
}

interface AssembleOptions {
  outDir: string;
  buildArgs: Record<string, string>;
  /** Leave this instruction out, as if the Dockerfile had forgotten it. */
  skip?: (stage: Stage, ins: Instruction) => boolean;
  /** Stages whose instructions are unchanged from an earlier assembly are reused, as Docker's cache would. */
  cache?: Map<string, StageResult>;
  /** Stands in for `npm ci --omit=dev` when given (reuse of an identical earlier install). */
  productionInstall?: (workdir: string) => void;
}

function assemble(df: Dockerfile, opts: AssembleOptions): Map<string, StageResult> {
  const globals: Record<string, string> = {};
  for (const ins of df.globalArgs) declareArg(ins, globals, globals, opts.buildArgs);
  const results = new Map<string, StageResult>();
  const ignored = dockerignoreMatcher(repo);

  for (const stage of df.stages) {
    const kept = stage.instructions.filter((ins) => !opts.skip?.(stage, ins));
    const cacheKey = JSON.stringify([stage.from, kept, opts.buildArgs]);
    const cached = opts.cache?.get(cacheKey);
    if (cached) {
      results.set(stage.name, cached);
      continue;
    }
    const root = path.join(opts.outDir, stage.name);
    fs.mkdirSync(root, { recursive: true });
    const st: StageResult = { root, workdir: '/', env: {}, expose: [] };
    const args: Record<string, string> = {};
    const at = (p: string) => path.join(root, path.posix.resolve(st.workdir, p));
    const vars = () => ({ ...args, ...st.env });

    for (const ins of kept) {
      const where = `Dockerfile line ${ins.line} (${ins.op} ${ins.args.slice(0, 60)})`;
      switch (ins.op) {
        case 'ARG':
          declareArg(ins, args, globals, opts.buildArgs);
          break;
        case 'ENV':
          Object.assign(st.env, parseEnv(ins.args, vars()));
          break;
        case 'WORKDIR':
          st.workdir = path.posix.resolve(st.workdir, expand(ins.args, vars()));
          fs.mkdirSync(at('.'), { recursive: true });
          break;
        case 'COPY': {
          const parts = words(expand(ins.args, vars()));
          const flags = parts.filter((w) => w.startsWith('--'));
          const paths = parts.filter((w) => !w.startsWith('--'));
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          const dest = paths.pop()!;
          assert.ok(paths.length > 0, `${where}: COPY without a source`);
          for (const src of paths) {
            assert.ok(!/[*?[]/.test(src), `${where}: wildcards in COPY are not simulated`);
            let source: string;
            if (from) {
              const fromStage = results.get(from);
              assert.ok(fromStage, `${where}: no earlier stage named ${from}`);
              source = path.join(fromStage.root, path.posix.resolve('/', src));
            } else {
              const rel = path.posix
                .normalize(src)
                .replace(/^\.\/?/, '')
                .replace(/\/$/, '');
              assert.ok(!rel.startsWith('..'), `${where}: ${src} is outside the build context`);
              assert.ok(!rel || !ignored(rel), `${where}: ${src} is excluded by .dockerignore`);
              source = path.join(repo, rel);
            }
            assert.ok(fs.existsSync(source), `${where}: ${src} does not exist`);
            const intoDir = dest.endsWith('/') || paths.length > 1 || fs.statSync(source).isDirectory();
            const target =
              intoDir && !fs.statSync(source).isDirectory()
                ? path.join(at(dest), path.basename(source))
                : at(dest);
            copyTree(
              source,
              target,
              from ? () => false : (abs) => ignored(path.relative(repo, abs).split(path.sep).join('/')),
            );
          }
          break;
        }
        case 'RUN':
          run(ins, st, at('.'), { ...args, ...st.env }, where, opts);
          break;
        case 'USER':
          st.user = ins.args;
          break;
        case 'EXPOSE':
          st.expose.push(...ins.args.split(/\s+/));
          break;
        case 'HEALTHCHECK':
          st.healthcheck = ins.args;
          break;
        case 'CMD':
          st.cmd = JSON.parse(ins.args) as string[];
          break;
        case 'LABEL':
        case 'STOPSIGNAL':
          break;
        default:
          assert.fail(`${where}: this test does not know how to carry out ${ins.op}; teach it`);
      }
    }
    results.set(stage.name, st);
    opts.cache?.set(cacheKey, st);
  }
  return results;
}

function declareArg(
  ins: Instruction,
  scope: Record<string, string>,
  globals: Record<string, string>,
  buildArgs: Record<string, string>,
) {
  const eq = ins.args.indexOf('=');
  const name = eq < 0 ? ins.args : ins.args.slice(0, eq);
  const dflt = eq < 0 ? globals[name] : expand(ins.args.slice(eq + 1).replace(/^"(.*)"$/, '$1'), globals);
  const value = buildArgs[name] ?? dflt;
  if (value !== undefined) scope[name] = value;
}

function copyTree(source: string, target: string, skip: (abs: string) => boolean) {
  if (skip(source)) return;
  const stat = fs.statSync(source);
  if (stat.isDirectory()) {
    fs.mkdirSync(target, { recursive: true });
    for (const entry of fs.readdirSync(source))
      copyTree(path.join(source, entry), path.join(target, entry), skip);
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(source, target);
  }
}

function run(
  ins: Instruction,
  st: StageResult,
  cwd: string,
  env: Record<string, string>,
  where: string,
  opts: AssembleOptions,
) {
  const command = ins.args.replace(/^(--\S+\s+)+/, ''); // --mount=type=cache,... only affects caching
  if (/^npm ci\b/.test(command)) {
    assert.ok(
      !/&&|;|\|/.test(command),
      `${where}: keep npm ci alone on its RUN line so this test can stand in for it`,
    );
    if (/--omit=dev\b/.test(command)) {
      if (opts.productionInstall) return opts.productionInstall(cwd);
      const r = spawnSync(
        'npm',
        [
          'ci',
          '--omit=dev',
          '--ignore-scripts',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
        ],
        { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } },
      );
      assert.equal(r.status, 0, `${where}: npm ci --omit=dev failed:\n${r.stderr}`);
    } else {
      // A full install (dev dependencies, for tsc): this checkout's node_modules comes from the same lockfile.
      fs.symlinkSync(path.join(repo, 'node_modules'), path.join(cwd, 'node_modules'), 'dir');
    }
    return;
  }
  // Paths under the image's filesystem are paths under this stage's folder.
  const local = command.replaceAll(st.workdir === '/' ? '\0' : st.workdir, cwd);
  const localEnv = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, v.replaceAll(st.workdir, cwd)]),
  );
  const r = spawnSync('sh', ['-c', local], { cwd, encoding: 'utf8', env: { ...process.env, ...localEnv } });
  assert.equal(r.status, 0, `${where} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Running the image's command

function startImage(
  st: StageResult,
  waitReady: boolean,
  env: Record<string, string> = {},
): Promise<RunningServer> {
  assert.ok(st.cmd && st.cmd.length > 0, 'the image has a CMD');
  const cwd = path.join(st.root, st.workdir);
  const [exe, ...argv] = st.cmd;
  return startServer({
    command: [exe === 'node' ? process.execPath : exe!, ...argv],
    cwd,
    // The image's own environment (its paths mapped here); TFJS_BACKEND unset so the image's default, auto,
    // meets a tfjs-node without its native library and must fall back to wasm by itself.
    env: {
      ...Object.fromEntries(Object.entries(st.env).map(([k, v]) => [k, v.replaceAll(st.workdir, cwd)])),
      TFJS_BACKEND: '',
      ...env,
    },
    waitReady,
    timeoutMs: 180_000,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Inspecting the installed tree

function installedPackages(nodeModules: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir)) {
      if (entry.startsWith('.')) continue;
      const full = path.join(dir, entry);
      if (entry.startsWith('@')) {
        for (const scoped of fs.readdirSync(full)) visit(path.join(full, scoped));
      } else {
        visit(full);
      }
    }
  };
  const visit = (pkgDir: string) => {
    if (fs.lstatSync(pkgDir).isSymbolicLink()) return; // the workspace's own link
    found.push(pkgDir);
    walk(path.join(pkgDir, 'node_modules'));
  };
  walk(nodeModules);
  return found;
}

/** Every require()/import() in the compiled code must find its file or package in the image. */
function unresolvedImports(appDir: string, optional: Set<string>): string[] {
  const problems: string[] = [];
  const builtins = new Set(builtinModules);
  const jsFiles: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.js')) jsFiles.push(full);
    }
  };
  walk(path.join(appDir, 'dist'));
  // Loads only: require.resolve() merely looks a path up, and the engine looks up tsx's hook that way for the
  // TypeScript worker it starts under tsx, a branch compiled code never takes.
  const re = /\b(?:require|import)\(\s*["']([^"']+)["']\s*\)/g;
  for (const file of jsFiles) {
    const code = fs.readFileSync(file, 'utf8');
    for (let m = re.exec(code); m; m = re.exec(code)) {
      const spec = m[1]!;
      if (spec.startsWith('node:') || builtins.has(spec)) continue;
      if (spec.startsWith('.')) {
        const base = path.resolve(path.dirname(file), spec);
        const candidates = [base, `${base}.js`, `${base}.json`, path.join(base, 'index.js')];
        if (!candidates.some((c) => fs.existsSync(c) && fs.statSync(c).isFile())) {
          problems.push(`${path.relative(appDir, file)}: ${spec}`);
        }
        continue;
      }
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      let dir = path.dirname(file);
      let found = false;
      for (;;) {
        if (fs.existsSync(path.join(dir, 'node_modules', name, 'package.json'))) found = true;
        if (found || dir === appDir || dir === path.dirname(dir)) break;
        dir = path.dirname(dir);
      }
      if (!found && !optional.has(name)) problems.push(`${path.relative(appDir, file)}: ${spec}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------

describe('the container image (service/Dockerfile), assembled without Docker', { timeout: 900_000 }, () => {
  const df = parseDockerfile(fs.readFileSync(dockerfilePath, 'utf8'));
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gourmetgram-image-'));
  const cache = new Map<string, StageResult>();
  let image: StageResult;
  let appDir: string;

  before(() => {
    image = assemble(df, { outDir: path.join(outDir, 'full'), buildArgs: BUILD_ARGS, cache }).get(
      df.stages.at(-1)!.name,
    )!;
    appDir = path.join(image.root, image.workdir);
  });
  after(() => fs.rmSync(outDir, { recursive: true, force: true }));

  it('is multi-stage on a glibc Node 20 base, runs as a non-root user, exposes 3000 (and 9464 for metrics) and checks /healthz', () => {
    assert.ok(df.stages.length >= 2, 'a build stage and a runtime stage');
    const defaults = Object.fromEntries(df.globalArgs.map((a) => a.args.split('=') as [string, string]));
    const stageNames = new Set(df.stages.map((s) => s.name));
    for (const stage of df.stages) {
      const from = expand(stage.from, defaults);
      if (stageNames.has(from)) continue; // built on an earlier stage
      assert.match(
        from,
        /^node:20[.\d]*-(bookworm|bullseye|trixie)(-slim)?$/,
        `${stage.name}: glibc Node 20, got ${from}`,
      );
    }
    assert.ok(
      image.user && !/^(root|0)(:|$)/.test(image.user),
      `runs as a non-root user, got USER ${image.user}`,
    );
    assert.deepEqual(image.expose, ['3000', '9464']);
    assert.match(image.healthcheck ?? '', /\/healthz/);
    assert.deepEqual(image.cmd, ['node', 'dist/service/src/main.js']);
  });

  it("runs glibc's malloc as bench/memory.ts chose it, and npm start does too", () => {
    for (const [name, value] of Object.entries(IMAGE_MALLOC_ENV)) {
      assert.equal(image.env[name], value, `ENV ${name} in the runtime stage`);
    }
    const start = (
      JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts.start!;
    for (const [name, value] of Object.entries(IMAGE_MALLOC_ENV))
      assert.ok(start.includes(`${name}=${value} `), start);
  });

  it('installs only the service workspace’s production dependencies: no Pulumi, no dev-only package', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const installed = installedPackages(path.join(appDir, 'node_modules')).map((p) =>
      path.relative(appDir, p).split(path.sep).join('/'),
    );
    assert.ok(installed.length > 50, `the production install happened (${installed.length} packages)`);
    for (const must of ['express', 'sharp', '@tensorflow/tfjs-backend-wasm']) {
      assert.ok(installed.includes(`node_modules/${must}`), `${must} is installed`);
    }
    assert.deepEqual(
      installed.filter((p) => p.includes('node_modules/@pulumi/')),
      [],
      'no Pulumi SDK in the image',
    );
    const devOnly = installed.filter((p) => lock.packages[p]?.dev === true);
    assert.deepEqual(devOnly, [], 'no package the lockfile marks as dev-only');
    for (const tool of ['typescript', 'tsx', 'eslint', 'autocannon', 'playwright-core']) {
      assert.ok(
        !installed.includes(`node_modules/${tool}`),
        `${tool} is a development tool, not in the image`,
      );
    }
  });

  it('holds the service and the model library, not the training code', () => {
    assert.ok(fs.existsSync(path.join(appDir, 'dist', 'model', 'src', 'classifier.js')));
    assert.ok(fs.existsSync(path.join(appDir, 'model', 'shipped', 'network', 'model.json')));
    for (const absent of ['dist/model/train', 'dist/model/cli', 'model/train']) {
      assert.ok(!fs.existsSync(path.join(appDir, absent)), `${absent} belongs to the training image`);
    }
    assert.ok(
      !installedPackages(path.join(appDir, 'node_modules')).some((p) => /nsfwjs|torch/.test(p)),
      'no fallback backbone package',
    );
  });

  it('resolves every import of the compiled code inside the image', () => {
    const servicePkg = JSON.parse(fs.readFileSync(path.join(repo, 'service', 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    assert.ok(
      fs.existsSync(path.join(appDir, 'dist', 'service', 'src', 'main.js')),
      'the compiled server is there',
    );
    const missing = unresolvedImports(appDir, new Set(Object.keys(servicePkg.optionalDependencies ?? {})));
    assert.deepEqual(
      missing,
      [],
      'imports the image cannot satisfy (add the package to service/package.json dependencies, or COPY the file)',
    );
  });

  it("starts with the image's CMD, becomes ready, serves the page and classifies a photo", async (t) => {
    // Labels on, in the embedded store (a folder of the "container"): PGlite and its thread must be in the image.
    const server = await startImage(image, true, {
      LABELS: 'on',
      LABEL_DATA_DIR: path.join(image.root, 'tmp', 'labels'),
    });
    try {
      const ready = server.logs.find((l) => String(l.msg).startsWith('ready:'));
      assert.ok(ready, 'the ready log names the network it runs');
      t.diagnostic(`${String(ready.msg)}`);
      assert.match(String(ready.architecture), /^mobilenet_v2_/);
      const form = new FormData();
      form.append(
        'file',
        new Blob([new Uint8Array(await makeJpeg(320, 240))], { type: 'image/jpeg' }),
        'photo.jpg',
      );
      const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { label: string; confidence: number; id: string };
      assert.ok(FOOD11_DISPLAY_NAMES.includes(body.label), `a Food-11 class, got ${body.label}`);
      assert.ok(body.confidence > 0 && body.confidence <= 1);
      await labelsOpen(server.url);
      const { answer } = await labelWithRetry(server.url, body.id, 'Soup');
      assert.equal(answer.kind, 'correction');

      const bundled = await fetch(`${server.url}/test`);
      assert.equal(bundled.status, 200, 'GET /test classifies the photo bundled in the image');

      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 200);
      const html = await page.text();
      const local = [...html.matchAll(/(?:src|href)="(\/[^"/][^"]*)"/g)].map((m) => m[1]!);
      assert.ok(local.length > 0, 'the upload page links its own script or style sheet');
      for (const url of local) {
        assert.equal((await fetch(`${server.url}${url}`)).status, 200, `${url}, linked from the upload page`);
      }
    } finally {
      await server.stop();
    }
  });

  it('fails when the Dockerfile forgets the shipped model (a forgotten COPY is caught)', async (t) => {
    const forgets = (stage: Stage, ins: Instruction) =>
      stage === df.stages.at(-1) && ins.op === 'COPY' && words(ins.args).includes('model/shipped');
    assert.ok(
      df.stages.at(-1)!.instructions.some((ins) => forgets(df.stages.at(-1)!, ins)),
      'the runtime stage copies model/shipped',
    );
    const variant = assemble(df, {
      outDir: path.join(outDir, 'forgetful'),
      buildArgs: BUILD_ARGS,
      cache,
      skip: forgets,
      // The package files are the same, so the production install is too: move it rather than redo it.
      productionInstall: (workdir) =>
        fs.renameSync(path.join(appDir, 'node_modules'), path.join(workdir, 'node_modules')),
    }).get(df.stages.at(-1)!.name)!;
    const server = await startImage(variant, false);
    try {
      await assert.rejects(server.waitReady(120_000), 'a service without its model must not become ready');
      const why = [...server.logs.map((l) => `${String(l.msg)} ${String(l.err ?? '')}`), ...server.stderr];
      t.diagnostic(`without model/shipped: ${why.at(-1)?.trim()}`);
    } finally {
      await server.stop();
    }
  });
});
