import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

// What Linux's /proc says a process, or the whole machine, has used: read directly, so a measurement costs the
// measured process nothing.

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds the process (all its threads) has used so far. */
export function processCpuSeconds(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Busy and total jiffies of the whole machine, to tell how saturated it was. */
export function machineJiffies(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { busy: total - idle, total };
}

/** Resident memory of the process, all its threads (VmRSS). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : NaN;
}

/** Peak resident memory of the process since it started (VmHWM), as the kernel counted it. */
export function peakRssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : NaN;
}

/**
 * Where a process's resident memory sits, by the kind of mapping that holds it (/proc/<pid>/smaps):
 * - `wasm`: WebAssembly memories (TF.js's wasm heap in each worker). V8 reserves each as its accessible pages
 *   followed by a guard region of several GiB that is never accessible; no other mapping in a Node process has a
 *   guard that large (glibc's arenas reserve 64 MiB at most);
 * - `brk`: the [heap] segment, glibc's main malloc arena;
 * - `anonymous`: every other anonymous mapping: the V8 heaps of all threads, glibc's per-thread arenas,
 *   jemalloc's extents, and large allocations mapped on their own (libvips' pixel buffers, Node Buffers);
 * - `files`: mapped files (node, libvips, the wasm binary's code).
 */
export interface MemoryBreakdown {
  wasm: number;
  brk: number;
  anonymous: number;
  files: number;
}

const WASM_GUARD = 1024 ** 3;

export function memoryBreakdown(pid: number): MemoryBreakdown {
  const out: MemoryBreakdown = { wasm: 0, brk: 0, anonymous: 0, files: 0 };
  const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const mappings: { start: number; end: number; perms: string; name: string; rss: number }[] = [];
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      mappings.push({
        start: parseInt(header[1]!, 16),
        end: parseInt(header[2]!, 16),
        perms: header[3]!,
        name: header[4]!,
        rss: 0,
      });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && mappings.length > 0) mappings.at(-1)!.rss = Number(rss[1]) * 1024;
  }
  mappings.forEach((m, i) => {
    const next = mappings[i + 1];
    if (m.name === '[heap]') out.brk += m.rss;
    else if (m.name.startsWith('/')) out.files += m.rss;
    else if (
      m.name === '' &&
      next?.name === '' &&
      next.start === m.end &&
      next.perms.startsWith('---') &&
      next.end - next.start >= WASM_GUARD
    )
      out.wasm += m.rss;
    else out.anonymous += m.rss;
  });
  return out;
}
