// VSS_ID: a 128-bit id. Parsed with or without braces in any case, compared by value,
// formatted lowercase. The spelling it was parsed from is kept because a Writer Metadata
// Document echoes the writer's own GUID string (express writers use upper or mixed case).
import { randomUUID } from 'node:crypto';
import { VssError } from './errors.js';

const GUID_RE = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;

export class Guid {
  /** Lowercase 8-4-4-4-12 form, no braces: the value. */
  readonly value: string;
  /** The spelling this GUID was parsed from (braces removed), for faithful round trips. */
  readonly spelling: string;

  private constructor(value: string, spelling: string) {
    this.value = value;
    this.spelling = spelling;
  }

  static readonly NULL = new Guid('00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000000');

  /** Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces, any case. */
  static parse(text: string): Guid {
    const parsed = Guid.tryParse(text);
    if (!parsed) {
      throw new VssError('E_INVALIDARG', `"${text}" is not a GUID: expected 8-4-4-4-12 hexadecimal digits, optionally in braces`);
    }
    return parsed;
  }

  static tryParse(text: string): Guid | undefined {
    const m = GUID_RE.exec(text.trim());
    // A lone brace on one side is not a GUID.
    if (!m || text.trim().startsWith('{') !== text.trim().endsWith('}')) return undefined;
    const spelling = m[1]!;
    return new Guid(spelling.toLowerCase(), spelling);
  }

  static random(): Guid {
    const v = randomUUID();
    return new Guid(v, v);
  }

  static isGuid(text: string): boolean {
    return Guid.tryParse(text) !== undefined;
  }

  get isNull(): boolean {
    return this.value === Guid.NULL.value;
  }

  equals(other: Guid | string | undefined | null): boolean {
    if (other === undefined || other === null) return false;
    // The canonical spelling needs no parse; any other is parsed.
    if (typeof other === 'string') return other === this.value || Guid.tryParse(other)?.value === this.value;
    return other.value === this.value;
  }

  /** Lowercase, no braces: the form a Backup Components Document writes. */
  toString(): string {
    return this.value;
  }

  toJSON(): string {
    return this.value;
  }

  /** `{lowercase}`, the form Windows tools print. */
  toBraced(): string {
    return `{${this.value}}`;
  }
}
