// The top self-time functions of a V8 CPU profile, for the README's benchmark table.
// Usage: node --cpu-prof --cpu-prof-dir=prof build/bench/phase2-season.js ... && node build/bench/profile-top.js prof/*.cpuprofile [N]
// On a busy machine a sample's time includes the time the process waited for a core, so compare shares
// measured back to back, and CPU seconds (`/usr/bin/time`) beside them.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = '20'] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-top <file.cpuprofile> [N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  const frame = byId.get(id)?.callFrame;
  if (!frame) return;
  // Paths from the package on: the same function has the same name on every machine.
  const where = frame.url.replace(/^.*\/(build|node_modules)\//, '$1/');
  const key = `${frame.functionName || '(anonymous)'} ${where}${where ? `:${frame.lineNumber + 1}` : ''}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
console.log(`${(total / 1e6).toFixed(1)} s sampled`);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  console.log(`${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
}
