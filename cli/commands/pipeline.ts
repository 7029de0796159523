// `backfill pipeline`: the pipeline definition as people read it: seasons, phases and processors.

import type { Command } from 'commander';
import { PHASES, PROCESSORS } from '../../core/pipeline/definition.js';
import { SEASONS } from '../../core/pipeline/seasons.js';
import { withoutAdapters } from '../context.js';
import { formatTable } from '../output.js';

export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .description('show the seasons, phases and processors that the pipeline definition holds')
    .action(async () => {
      await withoutAdapters(async () => {
        const seasons = SEASONS.map((s) => ({
          season: s.label,
          regular: `${s.regularSeason.start}..${s.regularSeason.end}`,
          play_in: `${s.playIn.start}..${s.playIn.end}`,
          playoffs: `${s.playoffs.start}..${s.playoffs.end}`,
        }));
        const phases = Object.entries(PHASES).map(([n, p]) => ({
          phase: n,
          name: p.name,
          backfill: p.backfill ? 'yes' : 'never',
          what: p.description,
        }));
        const processors = PROCESSORS.map((p) => ({
          processor: p.name,
          phase: p.phase,
          output:
            p.output.kind === 'table'
              ? `${p.output.table.dataset}.${p.output.table.name}`
              : `objects ${p.output.source}`,
          upstream: p.upstream.join(' ') || '-',
          lookback_games: p.lookbackGames,
          gate: p.critical ? 'critical' : '',
        }));
        process.stdout.write(
          `Seasons\n${formatTable(seasons)}\nPhases\n${formatTable(phases)}\nProcessors\n${formatTable(processors)}`,
        );
        return 0;
      });
    });
}
