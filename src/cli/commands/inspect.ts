// shadowcopy inspect FILE [--json] [--xml]: read a saved VSS document and show it.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseVssDocument, VssError, writeBackupComponents, writeWriterMetadata } from '../../vss/index.js';
import { formatBackupComponents, formatWriterMetadata } from '../inspect-format.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('Show a Writer Metadata Document or Backup Components Document (genuine Windows XML)')
    .argument('<file>', 'the XML document')
    .option('--json', 'print the whole model as JSON')
    .option('--xml', 'print the document re-serialised in the genuine format')
    .action((file: string, opts: { json?: boolean; xml?: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw new VssError('VSS_E_OBJECT_NOT_FOUND', `cannot read ${file}: ${(e as Error).message}`);
      }
      const doc = parseVssDocument(bytes, file);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ kind: doc.kind, document: doc.document }, null, 2)}\n`);
      } else if (opts.xml) {
        process.stdout.write(`${doc.kind === 'writerMetadata' ? writeWriterMetadata(doc.document) : writeBackupComponents(doc.document)}\n`);
      } else {
        process.stdout.write(`${doc.kind === 'writerMetadata' ? formatWriterMetadata(doc.document) : formatBackupComponents(doc.document)}\n`);
      }
    });
}
