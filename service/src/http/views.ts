import type { Request } from 'express';
import sharp from 'sharp';
import { IMAGE_FORMATS, type ImageFormat } from '../../../model/src/preprocess';
import type { Prediction } from '../inference/prediction';

/**
 * The HTML pages: the upload form (a plain form POST, so it works without JavaScript; /static/upload.js adds
 * a preview and drag-and-drop), the result page and the error page. Every value is escaped.
 */

/** Browsers (and the no-JS form post) get these pages; curl, programs and load tests get JSON. */
export const wantsHtml = (req: Request) => req.accepts(['json', 'html']) === 'html';

const ACCEPT_ATTRIBUTE = Object.values(IMAGE_FORMATS)
  .map((f) => f.mediaType)
  .join(',');

export const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[
        c as '&' | '<' | '>' | '"' | "'"
      ],
  );

export const percent = (x: number) => `${(x * 100).toFixed(1)} %`;

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · GourmetGram</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<header><a href="/" class="brand">GourmetGram</a> <span class="tagline">what is on the plate?</span></header>
<main>
${body}
</main>
</body>
</html>
`;
}

export interface UploadPageModel {
  classes: string[];
  maxUploadBytes: number;
  ready: boolean;
}

export function uploadPage(m: UploadPageModel): string {
  const mb = (m.maxUploadBytes / (1024 * 1024)).toFixed(0);
  return layout(
    'Classify a food photo',
    `<h1>Classify a food photo</h1>
${m.ready ? '' : '<p class="notice">The model is still loading: a photo sent now may be refused for a few seconds.</p>'}
<form id="upload" method="post" action="/predict" enctype="multipart/form-data" data-max-bytes="${m.maxUploadBytes}">
  <label id="drop" class="drop" for="file">
    <span class="hint">Choose a photo or drop it here (JPEG, PNG, WebP or GIF, up to ${mb} MB)</span>
    <img id="preview" alt="" hidden>
    <input id="file" type="file" name="file" accept="${ACCEPT_ATTRIBUTE}" required>
  </label>
  <p id="status" class="status" role="status" aria-live="polite" hidden></p>
  <button type="submit">Classify</button>
</form>
${m.classes.length ? `<p class="classes">Classes: ${m.classes.map(escapeHtml).join(', ')}.</p>` : ''}
<script src="/static/upload.js" defer></script>`,
  );
}

export interface ResultPageModel {
  prediction: Prediction;
  /** the photo as the model saw it, as a data: URL */
  photoUrl: string;
  /** the photo as it arrived */
  photo: { width: number; height: number; format: ImageFormat };
  /** HTML (already escaped) under the result: the labels' "wrong category? fix it" form */
  labelling?: string;
}

export function resultPage(m: ResultPageModel): string {
  const p = m.prediction;
  const rows = p.top
    .map(
      (t) =>
        `<tr><td>${escapeHtml(t.label)}</td><td><meter min="0" max="1" value="${t.confidence}"></meter></td><td class="num">${percent(t.confidence)}</td></tr>`,
    )
    .join('\n');
  return layout(
    p.label,
    `<h1 id="label">${escapeHtml(p.label)}</h1>
<p class="confidence">confidence <strong id="confidence">${percent(p.confidence)}</strong></p>
<figure>
  <img id="photo" src="${m.photoUrl}" alt="the photo as the model saw it">
  <figcaption>your ${escapeHtml(m.photo.format.toUpperCase())} photo (${m.photo.width} × ${m.photo.height} px) as the model saw it</figcaption>
</figure>
<h2>Top 3</h2>
<table id="top">
${rows}
</table>
<h2>Timings</h2>
<table id="timings">
<tr><td>decode</td><td class="num">${p.timings.decodeMs} ms</td></tr>
<tr><td>queue</td><td class="num">${p.timings.queueMs} ms</td></tr>
<tr><td>inference</td><td class="num">${p.timings.inferenceMs} ms</td></tr>
<tr><td>total</td><td class="num">${p.timings.totalMs} ms</td></tr>
</table>
<p class="model">${escapeHtml(p.model.name)} ${escapeHtml(p.model.version)}</p>
${m.labelling ?? ''}
<p><a href="/" class="button">Classify another photo</a></p>`,
  );
}

export function errorPage(status: number, message: string): string {
  return layout(
    `Error ${status}`,
    `<h1>That did not work</h1>
<p class="error" id="error">${escapeHtml(message)}</p>
<p><a href="/" class="button">Try another photo</a></p>`,
  );
}

/** A small JPEG of the model's input for the result page (the upload itself is never stored). */
export async function modelInputDataUrl(rgb: Uint8Array, size: number): Promise<string> {
  const jpeg = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
