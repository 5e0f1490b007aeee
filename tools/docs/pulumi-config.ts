// Pulumi.yaml's `config:` block and docs/configuration.md's configuration table, as stacks/config-keys.ts defines every
// key: the one source of each default and description (generated-docs.ts writes them into their files).

import { CONFIG_SECTIONS, configFields } from '../../stacks/config-keys';

/** The types a Pulumi.yaml config declaration may name (Pulumi's project schema). */
export type DeclaredType = 'string' | 'integer' | 'boolean' | 'array';
type DeclaredValue = string | number | boolean | string[];

export interface KeyDeclaration {
  key: string;
  type: DeclaredType;
  default: DeclaredValue;
  description: string;
}

export function declaredType(value: unknown): DeclaredType {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return 'integer';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

/** Every key as Pulumi.yaml declares it, under the section headings of config-keys.ts. */
export function keyDeclarations(): { title: string; keys: KeyDeclaration[] }[] {
  const defaults = configFields.parse({}) as Record<string, DeclaredValue>;
  return CONFIG_SECTIONS.map(({ title, keys }) => ({
    title,
    keys: Object.entries(keys).map(([key, schema]) => {
      if (!schema.description) throw new Error(`config key ${key} has no description`);
      const value = defaults[key]!;
      return { key, type: declaredType(value), default: value, description: schema.description };
    }),
  }));
}

/**
 * A YAML scalar the way Prettier leaves it: plain where YAML would still read a string, else single-quoted,
 * or double-quoted when the text holds a single quote.
 */
function yamlScalar(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  const readsAsString =
    /^[A-Za-z0-9][\w./-]*$/.test(value) &&
    /[A-Za-z]/.test(value) &&
    !/^(true|false|yes|no|on|off|y|n|null)$/i.test(value) &&
    !/^[-+]?\d*\.?\d+[eE][-+]?\d+$/.test(value) &&
    !/^0[xo]/i.test(value);
  if (readsAsString) return value;
  return value.includes("'") ? JSON.stringify(value) : `'${value}'`;
}

export const PROJECT_CONFIG_MARKERS = {
  begin: '# Generated from stacks/config-keys.ts by `npm run docs`: change a key there, not here.',
  end: '# End of the generated config block.',
};

/** Pulumi.yaml's `config:` block: every key with its type, description and default. */
export function projectConfigBlock(): string {
  const lines = [
    '# An empty string means "not set"; set a key with `pulumi config set <key> <value>`.',
    'config:',
  ];
  for (const { title, keys } of keyDeclarations()) {
    lines.push(`  # ${title}`);
    for (const declaration of keys) {
      lines.push(`  ${declaration.key}:`, `    type: ${declaration.type}`);
      if (declaration.type === 'array') lines.push('    items:', '      type: string');
      lines.push(`    description: ${yamlScalar(declaration.description)}`);
      if (Array.isArray(declaration.default)) {
        lines.push('    default:', ...declaration.default.map((item) => `      - ${yamlScalar(item)}`));
      } else {
        lines.push(`    default: ${yamlScalar(declaration.default)}`);
      }
    }
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

export const README_TABLE_MARKERS = {
  begin: '<!-- Generated from stacks/config-keys.ts by `npm run docs`: change a key there, not here. -->',
  end: '<!-- End of the generated config table. -->',
};

function markdownDefault(value: DeclaredValue): string {
  if (Array.isArray(value)) return `\`${JSON.stringify(value)}\``;
  return value === '' ? "`''`" : `\`${String(value)}\``;
}

/** docs/configuration.md's configuration table: one row per key, in the order Pulumi.yaml declares them. */
export function readmeConfigTable(): string {
  const rows = keyDeclarations().flatMap(({ keys }) =>
    keys.map(
      (d) =>
        `| \`${d.key}\` | ${d.type} | ${markdownDefault(d.default)} | ${d.description.replaceAll('|', '\\|')} |`,
    ),
  );
  return ['| key | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
