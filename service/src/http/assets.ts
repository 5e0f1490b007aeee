import fs from 'node:fs';
import path from 'node:path';

/**
 * service/assets: under tsx this module runs from service/src/http, compiled from dist/service/src/http (the image keeps
 * service/assets beside dist/), so the folder is found relative to either.
 */
export function assetsDir(): string {
  const candidates = [
    path.resolve(__dirname, '..', '..', 'assets'),
    path.resolve(__dirname, '..', '..', '..', '..', 'service', 'assets'),
  ];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'static')));
  if (!found)
    throw new Error(
      `service/assets not found (looked in ${candidates.join(', ')}); it must ship with the service.`,
    );
  return found;
}

/** The photo GET /test classifies: the load-test target. */
export const TEST_PHOTO = 'test-photo.jpg';
