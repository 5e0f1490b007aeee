import { randomBytes } from 'node:crypto';

/**
 * A prediction's id: a UUID version 7 (RFC 9562), its first 48 bits the time it was made in ms, the other 74
 * random. The time lets any replica tell an id too new to be in the store yet (another replica is still writing
 * it: retry) from one that never existed, without asking anyone; the random bits make ids unguessable.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function newPredictionId(nowMs = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const isUuid = (id: string) => UUID.test(id);

/** When a version-7 id was made (ms since the epoch); undefined for any other UUID. */
export function predictionIdTime(id: string): number | undefined {
  if (!isUuid(id) || id[14] !== '7') return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
