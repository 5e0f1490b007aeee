import { escapeHtml, layout, percent } from '../http/views';
import type { AccuracyReport, Confusion, ModelAccuracy } from './accuracy';

/**
 * The labels' HTML: the held-out question (the category asked before the model's answer is shown), the
 * "wrong category? fix it" form under an ordinary result, the page a label's form post answers with, and
 * /accuracy. Plain forms: all of it works without JavaScript. Every value is escaped.
 */

export interface ClassChoice {
  id: string;
  name: string;
}

/** One submit button per class: a single click labels the photo. */
function classButtons(id: string, classes: ClassChoice[]): string {
  return `<form method="post" action="/labels" id="label-form" class="classes-choice">
  <input type="hidden" name="id" value="${escapeHtml(id)}">
${classes.map((c) => `  <button type="submit" name="label" value="${escapeHtml(c.id)}">${escapeHtml(c.name)}</button>`).join('\n')}
</form>`;
}

/** A held-out upload: the user names the category first; the model's answer comes with the next page. */
export function heldOutPage(m: {
  id: string;
  photoUrl: string;
  classes: ClassChoice[];
  pendingMinutes: number;
}): string {
  return layout(
    'What is on the plate?',
    `<h1>What is on the plate?</h1>
<p class="notice" id="held-out">Help us measure the classifier: pick the category yourself first, then see what the model said.</p>
<figure>
  <img id="photo" src="${m.photoUrl}" alt="your photo">
</figure>
${classButtons(m.id, m.classes)}
<p class="privacy">If you pick a category, this photo (scaled to 512 px) is kept to measure and improve the model; otherwise it is deleted within ${m.pendingMinutes} minutes.</p>`,
  );
}

/** Under an ordinary result: a correction, which is stored apart from the held-out labels. */
export function correctionForm(id: string, predicted: string, classes: ClassChoice[]): string {
  const options = classes
    .map(
      (c) =>
        `<option value="${escapeHtml(c.id)}"${c.name === predicted ? ' selected' : ''}>${escapeHtml(c.name)}</option>`,
    )
    .join('');
  return `<details id="fix">
<summary>Wrong category? Fix it</summary>
<form method="post" action="/labels" id="label-form">
  <input type="hidden" name="id" value="${escapeHtml(id)}">
  <label>The right category: <select name="label">${options}</select></label>
  <button type="submit">Save</button>
</form>
<p class="privacy">Saving keeps this photo (scaled to 512 px) to improve the model.</p>
</details>`;
}

export interface LabelledPageModel {
  heldOut: boolean;
  /** the user's class, display name */
  label: string;
  /** the model's answer, display names */
  predicted: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  replaced: boolean;
}

/** What a label's form post answers: both answers side by side. */
export function labelledPage(m: LabelledPageModel): string {
  const agreed = m.label === m.predicted;
  const rows = m.top
    .map(
      (t) =>
        `<tr><td>${escapeHtml(t.label)}</td><td><meter min="0" max="1" value="${t.confidence}"></meter></td><td class="num">${percent(t.confidence)}</td></tr>`,
    )
    .join('\n');
  return layout(
    'Thank you',
    `<h1>Thank you</h1>
<table id="answers">
<tr><td>you said</td><td><strong id="your-label">${escapeHtml(m.label)}</strong></td></tr>
<tr><td>the model said</td><td><strong id="label">${escapeHtml(m.predicted)}</strong> (${percent(m.confidence)})</td></tr>
</table>
<p id="verdict">${agreed ? 'The model agrees with you.' : 'The model got it wrong: your label helps it learn.'}${m.replaced ? ' Your earlier label was replaced.' : ''}</p>
<h2>The model's top 3</h2>
<table id="top">
${rows}
</table>
<p><a href="/" class="button">Classify another photo</a> <a href="/accuracy">How accurate is the model?</a></p>`,
  );
}

const pct = (x: number | null) => (x === null ? '—' : percent(x));

function confusionTable(c: Confusion, names: Map<string, string>, id: string): string {
  const name = (cls: string) => escapeHtml(names.get(cls) ?? cls);
  const head = `<tr><th>user ↓ / model →</th>${c.classes.map((cls) => `<th>${name(cls)}</th>`).join('')}</tr>`;
  const body = c.matrix
    .map(
      (row, i) =>
        `<tr><th>${name(c.classes[i]!)}</th>${row.map((n, j) => `<td class="num${i === j ? ' diagonal' : ''}">${n || ''}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<div class="scroll"><table id="${id}" class="confusion">\n${head}\n${body}\n</table></div>`;
}

function modelSection(m: ModelAccuracy, names: Map<string, string>, index: number): string {
  const h = m.heldOut;
  const ci = h.ci95 ? `95 % interval ${percent(h.ci95.low)} – ${percent(h.ci95.high)}` : 'no interval yet';
  const recall = h.perClass
    .map(
      (c) =>
        `<tr><td>${escapeHtml(names.get(c.class) ?? c.class)}</td><td class="num">${c.n}</td><td class="num">${pct(c.recall)}</td></tr>`,
    )
    .join('\n');
  return `<section class="model-accuracy">
<h2>${escapeHtml(m.name)} ${escapeHtml(m.version)}</h2>
<p class="confidence">held-out accuracy <strong class="accuracy">${pct(h.accuracy)}</strong> on <span class="n">${h.n}</span> photos (${ci})</p>
<h3>Recall per class (held-out)</h3>
<table class="recall"><tr><th>class</th><th>photos</th><th>recall</th></tr>
${recall}
</table>
<h3>Confusion matrix (held-out)</h3>
${confusionTable(h.confusion, names, `confusion-${index}`)}
<h3>Corrections</h3>
<p>${m.corrections.n} corrections (${m.corrections.agreed} named the class the model gave). Users chose to send them after seeing the answer, so they over-represent mistakes: they are training data, not an accuracy estimate.</p>
${m.corrections.n > 0 ? confusionTable(m.corrections.confusion, names, `corrections-${index}`) : ''}
</section>`;
}

export function accuracyPage(report: AccuracyReport, classes: ClassChoice[]): string {
  const names = new Map(classes.map((c) => [c.id, c.name]));
  return layout(
    'Live accuracy',
    `<h1>Live accuracy</h1>
<p>Users labelled <strong id="labels-total">${report.labelsTotal}</strong> photos: ${report.heldOutTotal} held out (asked before they saw the model's answer) and ${report.correctionsTotal} corrections.</p>
${report.models.length ? report.models.map((m, i) => modelSection(m, names, i)).join('\n') : '<p>No labels yet.</p>'}
<p><a href="/" class="button">Classify a photo</a></p>`,
  );
}
