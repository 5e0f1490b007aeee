import fs from 'node:fs';

// bench/REPORT.md is written by more than one command: `npm run bench` writes its top, and bench/memory.ts and
// bench/probes.ts each own a section between `<!-- <tag>:begin -->` and `<!-- <tag>:end -->`, so each command
// can be rerun alone without losing what the others measured.

/** The section's lines between its tag's markers, as it stands in the report. */
export function markedSection(tag: string, lines: string[]): string {
  return [`<!-- ${tag}:begin -->`, ...lines, `<!-- ${tag}:end -->`].join('\n');
}

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

/** Replaces the tag's section of the report, or appends it to a report that has none yet. */
export function writeSection(file: string, tag: string, section: string): void {
  const report = read(file);
  const marked = new RegExp(`<!-- ${tag}:begin -->[\\s\\S]*<!-- ${tag}:end -->`);
  fs.writeFileSync(
    file,
    marked.test(report) ? report.replace(marked, () => section) : `${report.trimEnd()}\n\n${section}\n`,
  );
}

/** Every marked section of the report, in order: what `npm run bench` keeps when it rewrites the top. */
export function markedSections(file: string): string[] {
  return [...read(file).matchAll(/<!-- ([\w-]+):begin -->[\s\S]*?<!-- \1:end -->/g)].map((match) => match[0]);
}
