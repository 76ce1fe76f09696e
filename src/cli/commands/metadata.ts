// shadowcopy metadata [--writer ID|NAME]... [--xml]: Identify to every writer (a requester
// session's GatherWriterMetadata) and show each Writer Metadata Document, as a summary (like
// vshadow -wm) or in the genuine XML format (like vshadow -wm3).
import type { Command } from 'commander';
import { VssError, writeWriterMetadata, type Guid, type WriterMetadata } from '../../vss/index.js';
import { matchesWriter } from '../admin-format.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';
import { formatWriterMetadata } from '../inspect-format.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerMetadata(program: Command): void {
  const cmd = program
    .command('metadata')
    .description('Gather the writers\' metadata (Identify) and show each Writer Metadata Document')
    .option('--writer <id|name>', 'only this writer: class id, instance id or name; repeatable', collect, [])
    .option('--xml', 'print each document in the genuine XML format, one per line');
  addCoordinatorOptions(cmd).action(async (o: CoordinatorCliOptions & { writer: string[]; xml?: boolean }) => {
    const access = await coordinatorAccess(o);
    try {
      const session = await access.backupComponents();
      const docs: { instanceId: Guid; metadata: WriterMetadata }[] = [];
      try {
        await session.initializeForBackup();
        await session.gatherWriterMetadata();
        for (let i = 0; i < session.getWriterMetadataCount(); i++) docs.push(session.getWriterMetadata(i));
      } finally {
        await session.release();
      }
      const who = (d: (typeof docs)[number]) => ({ writerId: d.metadata.identity.writerId, instanceId: d.instanceId, writerName: d.metadata.identity.writerName, instanceName: d.metadata.identity.instanceName });
      for (const spec of o.writer) {
        if (!docs.some((d) => matchesWriter(spec, who(d)))) {
          throw new VssError('VSS_E_OBJECT_NOT_FOUND', `no writer "${spec}" answered Identify; \`shadowcopy writers\` lists the subscribed writers (a writer that fails Identify has no metadata)`);
        }
      }
      const chosen = o.writer.length ? docs.filter((d) => o.writer.some((s) => matchesWriter(s, who(d)))) : docs;
      chosen.sort((a, b) => a.metadata.identity.writerName.localeCompare(b.metadata.identity.writerName));
      if (o.xml) {
        process.stdout.write(chosen.map((d) => `${writeWriterMetadata(d.metadata)}\n`).join(''));
      } else if (!chosen.length) {
        process.stdout.write(`No writer answered Identify${o.standalone ? ' (--standalone has no external writers)' : ''}.\n`);
      } else {
        process.stdout.write(`${chosen.map((d) => `${formatWriterMetadata(d.metadata)}`).join('\n\n')}\n`);
      }
    } finally {
      await access.close();
    }
  });
}
