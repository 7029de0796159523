// Where the project's own files are, whether running from TypeScript sources or from build/.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The folder holding nba-backfill's package.json (the repo, or the image's /app). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'nba-backfill') {
      cached = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the nba-backfill package root above this module');
    dir = parent;
  }
}

/** The vendored real data set (data/nba in the repo). */
export function bundledDataDir(): string {
  return join(packageRoot(), 'data', 'nba');
}
