import assert from 'node:assert/strict';
import { bytes } from './images';

/** What the labels tests do as a client: predict a photo as JSON, label it, retrying where the service says so. */

export interface PredictAnswer {
  id?: string;
  heldOut?: boolean;
  label?: string;
  model: { name: string; version: string };
}

export interface LabelAnswer {
  id: string;
  label: string;
  labelId: string;
  kind: 'heldout' | 'correction';
  replaced: boolean;
  prediction: { label: string; confidence: number; top: { label: string; confidence: number }[] };
}

export async function predictJson(url: string, photo: Buffer, heldOut?: boolean): Promise<PredictAnswer> {
  const query = heldOut === undefined ? '' : `?heldOut=${heldOut ? 1 : 0}`;
  const res = await fetch(`${url}/predict${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'image/jpeg' },
    body: bytes(photo),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as PredictAnswer;
}

export function postLabel(url: string, id: string, label: string): Promise<Response> {
  return fetch(`${url}/labels`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id, label }),
  });
}

/**
 * Labels a prediction, retrying 503s after their Retry-After (capped, so a test moves on) and connection errors,
 * as a well-behaved client would; counts the 503s it saw. Any other answer than 200 or 503 fails.
 */
export async function labelWithRetry(
  url: string,
  id: string,
  label: string,
  timeoutMs = 90_000,
): Promise<{ answer: LabelAnswer; retries: number }> {
  const until = Date.now() + timeoutMs;
  let retries = 0;
  for (;;) {
    let res: Response | undefined;
    try {
      res = await postLabel(url, id, label);
    } catch {
      res = undefined;
    }
    if (res?.status === 200) return { answer: (await res.json()) as LabelAnswer, retries };
    if (res && res.status !== 503) assert.fail(`label ${id}: ${res.status} ${await res.text()}`);
    if (res) assert.ok(res.headers.get('retry-after'), '503 without Retry-After');
    await res?.body?.cancel();
    retries++;
    if (Date.now() > until) assert.fail(`label ${id}: still refused after ${timeoutMs} ms`);
    const after = Number(res?.headers.get('retry-after') ?? 1);
    await new Promise((r) => setTimeout(r, Math.min(after, 1) * 500));
  }
}

export interface AccuracyAnswer {
  labelsTotal: number;
  heldOutTotal: number;
  correctionsTotal: number;
  models: {
    name: string;
    version: string;
    heldOut: {
      n: number;
      correct: number;
      accuracy: number | null;
      ci95: { low: number; high: number } | null;
      perClass: { class: string; n: number; recall: number | null }[];
      confusion: { classes: string[]; matrix: number[][] };
    };
    corrections: { n: number; agreed: number; confusion: { classes: string[]; matrix: number[][] } };
  }[];
}

/**
 * Waits until the service's labels store is open: it opens in the background (the service is ready without
 * it), so a test that labels at once would otherwise meet the 503 a user would retry.
 */
export async function labelsOpen(url: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/accuracy`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) return;
    if (Date.now() > until) assert.fail(`the labels store did not open within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function accuracy(url: string): Promise<AccuracyAnswer> {
  const res = await fetch(`${url}/accuracy`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as AccuracyAnswer;
}

/** Food-11's class ids, as the labels store keeps them. */
export const CLASS_IDS = [
  'Bread',
  'Dairy-product',
  'Dessert',
  'Egg',
  'Fried-food',
  'Meat',
  'Noodles-Pasta',
  'Rice',
  'Seafood',
  'Soup',
  'Vegetable-Fruit',
] as const;
