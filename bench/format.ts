import os from 'node:os';

// How the benchmark report writes its figures: n/a for what could not be measured, never NaN.

export const ms = (x: number, digits = 1) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : 'n/a');
export const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
/** Bytes in MiB (2^20), as /proc's kB and Kubernetes' Mi count them; the label says which. */
export const mib = (bytes: number, digits = 0) => `${(bytes / 1024 / 1024).toFixed(digits)} MiB`;

/** ✅ / ❌ against a goal, so the report says plainly which goals this machine met. */
export const verdict = (met: boolean) => (met ? '✅ met' : '❌ missed');

/** The 1, 5 and 15 minute load averages (now, unless given), to one decimal: how busy the machine was. */
export const loadAverage = (averages = os.loadavg(), separator = ', ') =>
  averages.map((x) => x.toFixed(1)).join(separator);
