import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import type { Run } from './read-run';

// The fonts librsvg (inside sharp) can find on a slim Debian/Ubuntu image; vega's default sans-serif works too.
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const WIDTH = 760;

/** Minutes since a run's first stage started: runs made on different days line up stage by stage. */
function loadStart(run: Run): number {
  return Math.min(...run.stages.map((s) => s.startedAt));
}

/**
 * The load stages as shaded bands, darker when more load was offered. Offered load = users ÷ mean think time
 * (d/2), the request rate the stage asks for if answers were instant; taken from the run with the most stages.
 */
function stageBands(runs: Run[]): Record<string, number>[] {
  const reference = [...runs].sort((a, b) => b.stages.length - a.stages.length)[0];
  if (!reference || reference.stages.length === 0) return [];
  const t0 = loadStart(reference);
  return reference.stages.map((s) => ({
    stage: s.stage,
    start: (s.startedAt - t0) / 60000,
    end: (s.endedAt - t0) / 60000,
    offered: Number((s.users / Math.max(s.delaySeconds / 2, 0.05)).toFixed(2)),
  }));
}

const BEFORE_MS = 60_000;
const AFTER_MS = 5 * 60_000; // long enough to see an autoscaler scale back down

function timelinePoints(runs: Run[]): Record<string, string | number>[] {
  const points: Record<string, string | number>[] = [];
  for (const run of runs) {
    if (!run.resources || run.stages.length === 0) continue;
    const t0 = loadStart(run);
    const tEnd = Math.max(...run.stages.map((s) => s.endedAt));
    for (const r of run.resources) {
      if (r.time < t0 - BEFORE_MS || r.time > tEnd + AFTER_MS) continue;
      const minute = (r.time - t0) / 60000;
      points.push({ run: run.name, minute, panel: 'replicas', series: 'all pods', value: r.nReplica });
      if (r.nReady !== null) {
        points.push({ run: run.name, minute, panel: 'replicas', series: 'ready', value: r.nReady });
      }
      points.push({ run: run.name, minute, panel: 'cpu', series: 'requested', value: r.cpuReqCore });
      if (r.cpuUseCore !== null) {
        points.push({ run: run.name, minute, panel: 'cpu', series: 'used', value: r.cpuUseCore });
      }
    }
  }
  return points;
}

function timelinePanel(
  title: string,
  panel: string,
  yTitle: string,
  bands: Record<string, number>[],
  points: Record<string, string | number>[],
  dashes: string[],
) {
  return {
    width: WIDTH,
    height: 190,
    title: { text: title, anchor: 'start' as const },
    layer: [
      {
        data: { values: bands },
        mark: { type: 'rect' as const, color: '#7f7f7f' },
        encoding: {
          x: { field: 'start', type: 'quantitative' as const, title: 'minutes since the load started' },
          x2: { field: 'end' },
          opacity: {
            field: 'offered',
            type: 'quantitative' as const,
            scale: { type: 'log' as const, range: [0.04, 0.4] },
            title: 'offered load (req/s)',
          },
        },
      },
      {
        data: { values: points.filter((p) => p.panel === panel) },
        mark: { type: 'line' as const, interpolate: 'step-after' as const, strokeWidth: 2 },
        encoding: {
          x: { field: 'minute', type: 'quantitative' as const },
          y: { field: 'value', type: 'quantitative' as const, title: yTitle },
          color: { field: 'run', type: 'nominal' as const, title: 'run' },
          strokeDash: {
            field: 'series',
            type: 'nominal' as const,
            title: null,
            scale: {
              domain: dashes,
              range: [
                [1, 0],
                [5, 4],
              ],
            },
          },
        },
      },
    ],
  };
}

export function resourcesChartSpec(runs: Run[]): TopLevelSpec | null {
  const points = timelinePoints(runs);
  if (points.length === 0) return null;
  const bands = stageBands(runs);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: FONT },
    title: {
      text: 'Replicas and CPU under the load sequence',
      subtitle: 'shaded: load stages, darker = more load',
    },
    vconcat: [
      timelinePanel('Replicas', 'replicas', 'pods', bands, points, ['ready', 'all pods']),
      timelinePanel('CPU', 'cpu', 'cores', bands, points, ['used', 'requested']),
    ],
    resolve: { scale: { color: 'shared', strokeDash: 'independent' } },
  } as TopLevelSpec;
}

export function latencyChartSpec(runs: Run[]): TopLevelSpec {
  const latency: Record<string, string | number>[] = [];
  const failures: Record<string, string | number>[] = [];
  for (const run of runs) {
    for (const s of run.stages) {
      for (const [percentile, ms] of [
        ['p50', s.p50Ms],
        ['p90', s.p90Ms],
        ['p99', s.p99Ms],
      ] as const) {
        if (Number.isFinite(ms) && ms > 0) latency.push({ run: run.name, stage: s.stage, percentile, ms });
      }
      if (s.requests > 0) {
        failures.push({ run: run.name, stage: s.stage, failed: s.failed / s.requests });
      }
    }
  }
  const stageAxis = {
    field: 'stage',
    type: 'ordinal' as const,
    title: 'load stage',
    axis: { labelAngle: 0 },
  };
  const runColor = { field: 'run', type: 'nominal' as const, title: 'run' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    config: { font: FONT },
    title: { text: 'Latency of successful requests, per load stage' },
    vconcat: [
      {
        data: { values: latency },
        facet: { column: { field: 'percentile', type: 'nominal', title: null } },
        spec: {
          width: 240,
          height: 200,
          layer: [
            { mark: { type: 'line', strokeWidth: 2 } },
            { mark: { type: 'point', filled: true, size: 25 } },
          ],
          encoding: {
            // quantitative, so 30 stages in a narrow panel get a few readable ticks instead of 30 crowded labels
            x: {
              field: 'stage',
              type: 'quantitative',
              title: 'load stage',
              axis: { tickMinStep: 1, format: 'd' },
            },
            y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms (log scale)' },
            color: runColor,
          },
        },
      },
      {
        data: { values: failures },
        width: WIDTH,
        height: 120,
        title: { text: 'Failed requests (timeouts, connection errors, non-2xx, 503 shed)', anchor: 'start' },
        mark: 'bar',
        encoding: {
          x: stageAxis,
          xOffset: { field: 'run', type: 'nominal' },
          y: { field: 'failed', type: 'quantitative', axis: { format: '%' }, title: 'of requests' },
          color: runColor,
        },
      },
    ],
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
}

/**
 * Vega-Lite → Vega → SVG (vega's headless renderer, no browser, no native canvas) → PNG through sharp's librsvg.
 * vega is ESM with a top-level await in its canvas probe, so it is imported, not required.
 */
export async function renderPng(spec: TopLevelSpec, file: string): Promise<void> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // density 144 = 2× the SVG's 72 dpi: crisp when viewed on a high-density screen or pasted in a report
    writeFileSync(file, await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer());
  } finally {
    view.finalize();
  }
}
