// shadowcopy trace [SET_ID|BACKUP_DIR] [--json]: a session's timeline.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { TimelineWire } from '../../protocol/admin.js';
import { VssError } from '../../vss/index.js';
import { addCoordinatorOptions, coordinatorAccess, type CoordinatorCliOptions } from '../coordinator-options.js';
import { formatTrace, frozenWindows } from '../trace-format.js';

export function registerTrace(program: Command): void {
  const cmd = program
    .command('trace')
    .description('Show a session\'s timeline: each writer, each event, when, how long, what it answered, how long it was frozen')
    .argument('<id>', 'a snapshot set id or session id (asks the coordinator), or a backup directory (reads its trace.json)')
    .option('--json', 'print the timeline as JSON');
  addCoordinatorOptions(cmd).action(async (id: string, o: CoordinatorCliOptions & { json?: boolean }) => {
    let timeline: TimelineWire;
    if (existsSync(id) && statSync(id).isDirectory()) {
      const file = join(id, 'trace.json');
      if (!existsSync(file)) throw new VssError('VSS_E_OBJECT_NOT_FOUND', `${id} has no trace.json; is it a shadowcopy backup directory?`);
      const parsed = TimelineWire.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) throw new VssError('VSS_E_CORRUPT_XML_DOCUMENT', `${file} is not a session timeline: ${parsed.error.issues[0]?.message}`);
      timeline = parsed.data;
    } else {
      const access = await coordinatorAccess(o);
      try {
        const admin = await access.admin();
        timeline = await admin.trace(id);
        admin.close();
      } finally {
        await access.close();
      }
    }
    process.stdout.write(o.json ? `${JSON.stringify({ ...timeline, frozen: frozenWindows(timeline) }, null, 2)}\n` : `${formatTrace(timeline)}\n`);
  });
}
