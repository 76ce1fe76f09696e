// Assertions shared by the tests.
import assert from 'node:assert/strict';
import { VssError, type VssErrorName } from '../../src/vss/index.js';

/** `fn` throws a VssError of `code`, whose message matches `text` when given. */
export function throwsVss(fn: () => unknown, code: VssErrorName, text?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(VssError.is(e), `expected a VssError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}

/** The async form of throwsVss. */
export async function rejectsVss(fn: () => Promise<unknown>, code: VssErrorName, text?: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(VssError.is(e), `expected a VssError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}
