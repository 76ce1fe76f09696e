// The genuine-format codec for both VSS documents.
import type { BackupComponentsDocument } from '../backup-components.js';
import type { WriterMetadata } from '../writer-metadata.js';
import { backupComponentsFrame } from './backup-components-xml.js';
import { AttributeReader, decodeDocument, readXml } from './tree.js';
import { writerMetadataFrame } from './writer-metadata-xml.js';

export { parseWriterMetadata, writeWriterMetadata, WMD_NAMESPACE } from './writer-metadata-xml.js';
export { parseBackupComponents, writeBackupComponents, BCD_NAMESPACE } from './backup-components-xml.js';
export { decodeDocument } from './tree.js';

export type VssDocument = { kind: 'writerMetadata'; document: WriterMetadata } | { kind: 'backupComponents'; document: BackupComponentsDocument };

/** Reads either document, telling which it is by its root element. */
export function parseVssDocument(input: string | Uint8Array, source?: string): VssDocument {
  let result: VssDocument | undefined;
  const a = new AttributeReader(source);
  readXml(decodeDocument(input, source), source, (root) => {
    if (root.name === 'WRITER_METADATA') return writerMetadataFrame(root, a, (document) => (result = { kind: 'writerMetadata', document }));
    if (root.name === 'BACKUP_COMPONENTS') return backupComponentsFrame(root, a, (document) => (result = { kind: 'backupComponents', document }));
    return a.fail(root, `the root element is <${root.name}>: expected <WRITER_METADATA> (a Writer Metadata Document) or <BACKUP_COMPONENTS> (a Backup Components Document)`);
  });
  return result!;
}
