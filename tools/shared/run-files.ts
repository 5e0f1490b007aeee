/**
 * A run directory holds one strategy's measurements: the load test writes the first four and the last, the monitor is pointed
 * at the fifth (`--out <run dir>/resources.csv`), and the report reads them all back.
 */
export const RUN_FILES = {
  /** siege's log format, one row per stage */
  siegeLog: 'siege.log',
  /** percentiles and failures by kind, one row per stage */
  latency: 'latency.csv',
  /** every request: stage, sent_at, latency_ms, status, bytes, error */
  requests: 'requests.csv',
  /** URL, profile, start/end, the model the service reported */
  meta: 'run.json',
  /** the monitor's samples */
  resources: 'resources.csv',
  /** the service's GET /accuracy (live accuracy from users' held-out labels) as the load test ended */
  liveAccuracy: 'accuracy.json',
} as const;
