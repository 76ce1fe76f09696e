// Where the genuine Windows documents are: $SHADOWCOPY_FIXTURES, else ../shared/fixtures/vss-xml/real
// beside the checkout. They are third-party data and are not copied into the project.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function fixturesDir(): string | undefined {
  const candidates = [process.env.SHADOWCOPY_FIXTURES, join(root, '..', 'shared', 'fixtures', 'vss-xml', 'real')];
  return candidates.find((d): d is string => !!d && existsSync(d));
}

/** Skip message for node:test when the fixtures are absent. */
export const NO_FIXTURES = 'genuine VSS XML fixtures not found: set SHADOWCOPY_FIXTURES or check out ../shared beside the project';

export function fixtureFiles(): string[] {
  const dir = fixturesDir();
  return dir ? readdirSync(dir).filter((f) => f.endsWith('.xml')).sort().map((f) => join(dir, f)) : [];
}

export function fixture(nameContains: string): string | undefined {
  return fixtureFiles().find((f) => f.includes(nameContains));
}
