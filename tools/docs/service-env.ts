// The table of the service's environment variables (docs/configuration.md and docs/interfaces.md carry it), as
// service/src/config.ts's schema defines each: the one source of every default and meaning.

import { environmentVariables } from '../../service/src/config';

export const ENV_TABLE_MARKERS = {
  begin:
    '<!-- Generated from service/src/config.ts by `npm run docs`: change a variable there, not here. -->',
  end: '<!-- End of the generated table. -->',
};

export function environmentTable(): string {
  const rows = environmentVariables().map(
    (v) => `| \`${v.name}\` | ${v.default !== undefined ? `\`${v.default}\`` : '—'} | ${v.meaning} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
