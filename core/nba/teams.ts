// The 30 NBA teams as NBA.com identifies them; stable over 2021-22..2024-25 (SOURCE.md, quirk 9).

export const TEAMS = {
  ATL: { id: 1610612737, name: 'Atlanta Hawks' },
  BKN: { id: 1610612751, name: 'Brooklyn Nets' },
  BOS: { id: 1610612738, name: 'Boston Celtics' },
  CHA: { id: 1610612766, name: 'Charlotte Hornets' },
  CHI: { id: 1610612741, name: 'Chicago Bulls' },
  CLE: { id: 1610612739, name: 'Cleveland Cavaliers' },
  DAL: { id: 1610612742, name: 'Dallas Mavericks' },
  DEN: { id: 1610612743, name: 'Denver Nuggets' },
  DET: { id: 1610612765, name: 'Detroit Pistons' },
  GSW: { id: 1610612744, name: 'Golden State Warriors' },
  HOU: { id: 1610612745, name: 'Houston Rockets' },
  IND: { id: 1610612754, name: 'Indiana Pacers' },
  LAC: { id: 1610612746, name: 'LA Clippers' },
  LAL: { id: 1610612747, name: 'Los Angeles Lakers' },
  MEM: { id: 1610612763, name: 'Memphis Grizzlies' },
  MIA: { id: 1610612748, name: 'Miami Heat' },
  MIL: { id: 1610612749, name: 'Milwaukee Bucks' },
  MIN: { id: 1610612750, name: 'Minnesota Timberwolves' },
  NOP: { id: 1610612740, name: 'New Orleans Pelicans' },
  NYK: { id: 1610612752, name: 'New York Knicks' },
  OKC: { id: 1610612760, name: 'Oklahoma City Thunder' },
  ORL: { id: 1610612753, name: 'Orlando Magic' },
  PHI: { id: 1610612755, name: 'Philadelphia 76ers' },
  PHX: { id: 1610612756, name: 'Phoenix Suns' },
  POR: { id: 1610612757, name: 'Portland Trail Blazers' },
  SAC: { id: 1610612758, name: 'Sacramento Kings' },
  SAS: { id: 1610612759, name: 'San Antonio Spurs' },
  TOR: { id: 1610612761, name: 'Toronto Raptors' },
  UTA: { id: 1610612762, name: 'Utah Jazz' },
  WAS: { id: 1610612764, name: 'Washington Wizards' },
} as const;

export type TeamAbbr = keyof typeof TEAMS;

export const TEAM_ABBRS = Object.keys(TEAMS) as TeamAbbr[];

export function isTeamAbbr(value: string): value is TeamAbbr {
  return Object.hasOwn(TEAMS, value);
}

/** The parsed MATCHUP string. Home is read from the order, not from "vs." (SOURCE.md, quirk 5). */
export interface Matchup {
  readonly team: string;
  readonly opponent: string;
  readonly home: string;
  readonly away: string;
}

/**
 * `AAA vs. BBB`: AAA is at home against BBB. `AAA @ BBB`: AAA plays away at BBB.
 * In five neutral-site games of 2024-25 both teams' rows carry the same `A @ B` string, so the team
 * a row belongs to is not always the first code: home and away come from the string alone, and the
 * row's own team is whichever of the two it names.
 */
export function parseMatchup(matchup: string): { home: string; away: string } | undefined {
  const vs = /^([A-Z]{3}) vs\. ([A-Z]{3})$/.exec(matchup);
  if (vs) return { home: vs[1] as string, away: vs[2] as string };
  const at = /^([A-Z]{3}) @ ([A-Z]{3})$/.exec(matchup);
  if (at) return { home: at[2] as string, away: at[1] as string };
  return undefined;
}
