// The hand-written checks of the usual EventParams and EventResult (src/protocol/writer-events.ts)
// against their zod schemas: whatever the checks accept, the schema accepts, with the same
// output; and what the daemon and the SDK really send is accepted by the checks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { z } from 'zod';
import { EventParams, EventResult, usualEventParams, usualEventResult, WRITER_EVENTS } from '../../src/protocol/writer-events.js';

const GUID = '299198e8-fa51-4aa3-a85f-8c6fcca110c5';
const context = { backupType: 1, restoreType: 0, selectComponents: true, bootableSystemStateBackup: false, partialFileSupport: false, snapshotContext: 0, volumes: ['/srv'] };

/** Values of every JSON kind, near misses included. */
const anyValue = fc.oneof(
  fc.constantFrom(GUID, `{${GUID.toUpperCase()}}`, `{${GUID}`, 'not-a-guid', '', 'Freeze', 'Nope', '<BACKUP_COMPONENTS/>'),
  fc.string(),
  fc.constantFrom(0, 1, -1, 2.5, 2 ** 53, Number.MAX_SAFE_INTEGER),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
);
/** Mostly a valid value, sometimes anything. */
const validish = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: valid, weight: 8 }, { arbitrary: anyValue, weight: 1 });
const guid = fc.constantFrom(GUID, `{${GUID.toUpperCase()}}`);
const int = fc.oneof(fc.integer(), fc.constantFrom(0, 1, 2 ** 31));
const contextFields = {
  backupType: validish(int),
  restoreType: validish(int),
  selectComponents: validish(fc.boolean()),
  bootableSystemStateBackup: validish(fc.boolean()),
  partialFileSupport: validish(fc.boolean()),
  snapshotContext: validish(int),
  volumes: validish(fc.array(fc.string(), { maxLength: 3 })),
};
const contextLike = fc.oneof(
  { arbitrary: fc.record(contextFields), weight: 6 },
  { arbitrary: fc.record({ ...contextFields, extra: anyValue }, { requiredKeys: [] }), weight: 1 },
  { arbitrary: anyValue, weight: 1 },
);
const paramsLike = fc.oneof(
  { arbitrary: fc.record({ event: validish(fc.constantFrom(...WRITER_EVENTS)), instanceId: validish(guid), sessionId: validish(fc.string()), snapshotSetId: validish(guid), context: contextLike, bcdXml: validish(fc.string()) }, { requiredKeys: ['event', 'instanceId'] }), weight: 6 },
  { arbitrary: fc.record({ event: anyValue, instanceId: anyValue, sessionId: anyValue, snapshotSetId: anyValue, context: contextLike, bcdXml: anyValue, other: anyValue }, { requiredKeys: [] }), weight: 1 },
  { arbitrary: anyValue, weight: 1 },
);
const resultLike = fc.oneof(
  { arbitrary: fc.record({ ok: validish(fc.boolean()), metadataXml: validish(fc.string()), bcdXml: validish(fc.string()) }, { requiredKeys: ['ok'] }), weight: 6 },
  { arbitrary: fc.record({ ok: anyValue, metadataXml: anyValue, bcdXml: anyValue, failure: fc.oneof(fc.constant({ hr: 'VSS_E_WRITERERROR_RETRYABLE' }), anyValue), other: anyValue }, { requiredKeys: [] }), weight: 1 },
  { arbitrary: anyValue, weight: 1 },
);

/** JSON-shaped, as the checks see it: a parsed line. */
const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('usual event shapes', () => {
  /** Over 5,000 generated values: whatever `check` accepts, `schema` accepts, with the same output. */
  const agreesWithSchema = (arbitrary: fc.Arbitrary<unknown>, check: (v: unknown) => unknown, schema: z.ZodType, what: string): void => {
    let accepted = 0;
    fc.assert(
      fc.property(arbitrary, (raw) => {
        const v = json(raw);
        const fast = check(v);
        if (fast === undefined) return;
        accepted++;
        const parsed = schema.safeParse(v);
        assert.ok(parsed.success, `the check accepted what the schema refuses: ${JSON.stringify(v)}`);
        assert.deepEqual(fast, parsed.data);
      }),
      { numRuns: 5000 },
    );
    assert.ok(accepted > 500, `only ${accepted} generated ${what} had the usual shape`);
  };

  test('whatever the EventParams check accepts, the schema accepts, with the same output', () => {
    agreesWithSchema(paramsLike, usualEventParams, EventParams, 'params');
  });

  test('whatever the EventResult check accepts, the schema accepts, with the same output', () => {
    agreesWithSchema(resultLike, usualEventResult, EventResult, 'results');
  });

  test('what the daemon and the SDK send is the usual shape', () => {
    const params = [
      { event: 'Identify', instanceId: GUID },
      { event: 'Freeze', instanceId: GUID, sessionId: 's', context, snapshotSetId: GUID },
      { event: 'PrepareForBackup', instanceId: GUID, sessionId: 's', context: { ...context, volumes: [] }, snapshotSetId: GUID, bcdXml: '<BACKUP_COMPONENTS/>' },
    ];
    for (const p of params) assert.deepEqual(usualEventParams(json(p)), p);
    for (const r of [{ ok: true }, { ok: false }, { ok: true, metadataXml: '<WRITER_METADATA/>' }, { ok: true, bcdXml: '<BACKUP_COMPONENTS/>' }]) {
      assert.deepEqual(usualEventResult(json(r)), r);
    }
    // A failure has defaults to fill: the schema's job.
    assert.equal(usualEventResult({ ok: false, failure: { hr: 'VSS_E_WRITERERROR_RETRYABLE' } }), undefined);
  });

  test('what the schema refuses, the check refuses too (it then names the fault)', () => {
    for (const bad of [{ event: 'Nope', instanceId: GUID }, { event: 'Freeze', instanceId: 'x' }, { event: 'Freeze', instanceId: GUID, context: { ...context, backupType: 1.5 } }, [1], null, 'x']) {
      assert.equal(usualEventParams(bad), undefined);
      assert.equal(EventParams.safeParse(bad).success, false);
    }
    for (const bad of [{ ok: 'yes' }, { ok: true, metadataXml: 3 }, {}, null]) {
      assert.equal(usualEventResult(bad), undefined);
      assert.equal(EventResult.safeParse(bad).success, false);
    }
  });
});
