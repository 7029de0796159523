// `backfill pipeline`: the pipeline definition as people read it: seasons, phases and processors.

import type { Command } from 'commander';
import { PHASES, PROCESSORS } from '../../core/pipeline/definition.js';
import { SEASONS } from '../../core/pipeline/seasons.js';
import { withoutAdapters } from '../context.js';
import { formatTable } from '../output.js';
import { formatOf, formatOption, streamsFor } from '../streams.js';

/** `backfill pipeline --format json`: the rows of its three tables. */
export interface PipelineJson {
  readonly seasons: readonly { season: string; regular: string; play_in: string; playoffs: string }[];
  readonly phases: readonly { phase: string; name: string; backfill: string; what: string }[];
  readonly processors: readonly {
    processor: string;
    phase: number;
    output: string;
    upstream: readonly string[];
    lookback_games: number | null;
    gate: string;
  }[];
}

export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .description('show the seasons, phases and processors that the pipeline definition holds')
    .addOption(formatOption())
    .action(async (flags: { format: string }) => {
      const io = streamsFor(formatOf(flags));
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
        if (io.format === 'json') {
          const json = processors.map((p, i) => ({ ...p, upstream: [...(PROCESSORS[i]?.upstream ?? [])] }));
          io.json({ seasons, phases, processors: json } satisfies PipelineJson);
          return 0;
        }
        io.say(
          `Seasons\n${formatTable(seasons)}\nPhases\n${formatTable(phases)}\nProcessors\n${formatTable(processors)}`,
        );
        return 0;
      });
    });
}
