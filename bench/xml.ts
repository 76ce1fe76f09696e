// bench/xml: the codec against the bare XML tokenizer it is built on (saxes), same bytes, same run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { fixturesDir } from '../test/support/fixtures.js';
import { ComponentType, parseWriterMetadata, SourceType, UsageType, WriterMetadataBuilder, writeWriterMetadata } from '../src/vss/index.js';
import { interleavedMedianMs, report } from './report.js';

function tokenize(bytes: Uint8Array): void {
  // The bare tokenizer: decoding plus saxes with positions on, nothing built.
  const p = new SaxesParser({ position: true });
  p.write(new TextDecoder().decode(bytes)).close();
}

function synthetic(components: number): string {
  const b = new WriterMetadataBuilder({ writerId: '5f1e1c2a-0000-4000-8000-000000000001', writerName: 'Synthetic', usage: UsageType.USERDATA, source: SourceType.OTHER });
  for (let i = 0; i < components; i++) {
    const lp = `group${i % 100}\\sub${i % 7}`;
    b.addComponent({ type: ComponentType.FILEGROUP, logicalPath: lp, componentName: `c${i}`, selectable: i % 3 === 0, caption: `Component ${i}` });
    b.addFilesToFileGroup(lp, `c${i}`, `/srv/data/${i}`, '*.dat', true);
  }
  return writeWriterMetadata(b.build());
}

const dir = fixturesDir();
if (!dir) {
  console.log('bench: xml skipped: the genuine fixtures are not found (set SHADOWCOPY_FIXTURES)');
} else {
  const bytes = readFileSync(join(dir, 'diskshadow-ws-sql2017-nosql-WM3-system-writer.xml'));
  const model = parseWriterMetadata(bytes);
  const { tok, parse, write } = await interleavedMedianMs(
    { tok: () => tokenize(bytes), parse: () => parseWriterMetadata(bytes), write: () => writeWriterMetadata(model) },
    15,
    5,
  );
  report('xml', 'system_writer_tokenize_ms', tok);
  report('xml', 'system_writer_parse_ms', parse);
  report('xml', 'system_writer_write_ms', write);
  report('xml', 'parse_vs_tokenizer', parse / tok, { op: '<=', target: 2 });
  report('xml', 'write_vs_tokenizer', write / tok, { op: '<=', target: 2 });
}

const perComponent: number[] = [];
for (const n of [10_000, 100_000]) {
  const text = synthetic(n);
  const m = parseWriterMetadata(text);
  const { parse, write } = await interleavedMedianMs({ parse: () => parseWriterMetadata(text), write: () => writeWriterMetadata(m) }, n === 10_000 ? 9 : 5, 2);
  const us = ((parse + write) * 1000) / n;
  perComponent.push(us);
  report('xml', `synthetic_${n / 1000}k_parse_plus_write_us_per_component`, us);
}
report('xml', 'per_component_100k_vs_10k', perComponent[1]! / perComponent[0]!, { op: '<=', target: 1.5 });
