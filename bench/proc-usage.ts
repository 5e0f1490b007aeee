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
 * - `wasm`: WebAssembly memories (TF.js's wasm heap in each worker). V8 reserves each one as a contiguous
 *   region of several GiB (the memory plus its guard pages), which no other mapping in a Node process comes near;
 * - `brk`: the [heap] segment, glibc's main malloc arena;
 * - `anonymous`: every other anonymous mapping: the V8 heaps of all threads, glibc's per-thread arenas,
 *   jemalloc's extents, and large allocations mmapped on their own (libvips' pixel buffers, Node Buffers);
 * - `files`: mapped files (node, libvips, the wasm binary's code).
 */
export interface MemoryBreakdown {
  wasm: number;
  brk: number;
  anonymous: number;
  files: number;
}

const WASM_RESERVATION = 4 * 1024 ** 3;

export function memoryBreakdown(pid: number): MemoryBreakdown {
  const out: MemoryBreakdown = { wasm: 0, brk: 0, anonymous: 0, files: 0 };
  const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  // Adjacent anonymous mappings make one region (a wasm memory is split by its protections).
  let region = { end: -1, size: 0, rss: 0 };
  const closeRegion = () => {
    if (region.size >= WASM_RESERVATION) out.wasm += region.rss;
    else out.anonymous += region.rss;
    region = { end: -1, size: 0, rss: 0 };
  };
  let current: { start: number; end: number; name: string } | undefined;
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      current = { start: parseInt(header[1]!, 16), end: parseInt(header[2]!, 16), name: header[3]! };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss || !current) continue;
    const bytes = Number(rss[1]) * 1024;
    if (current.name === '') {
      if (current.start !== region.end) closeRegion();
      region.end = current.end;
      region.size += current.end - current.start;
      region.rss += bytes;
      continue;
    }
    closeRegion();
    if (current.name === '[heap]') out.brk += bytes;
    else if (current.name.startsWith('/')) out.files += bytes;
    else out.anonymous += bytes; // [stack], [anon:…] and the like
  }
  closeRegion();
  return out;
}
