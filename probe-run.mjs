import { createVitest } from 'vitest/node';
const [file, pattern, isolate] = process.argv.slice(2);
const ctx = await createVitest('test', {
  config: 'vitest.mutation.config.ts', pool: 'threads', maxWorkers: 1, watch: false, bail: 1,
  isolate: isolate === 'false' ? false : true, coverage: { enabled: false }, onConsoleLog: () => false,
  reporters: [],
});
for (let i = 0; i < 6; i++) {
  ctx.state.filesMap.clear();
  ctx.projects.forEach((p) => { p.config.testNamePattern = new RegExp(pattern); });
  const t = performance.now();
  await ctx.start(file.split(','));
  const files = ctx.state.getFiles();
  const tests = files.flatMap((f) => f.tasks).length;
  console.log(`run ${i}: ${Math.round(performance.now() - t)} ms`, files.map((f) => `${f.name} setup ${Math.round(f.setupDuration ?? 0)} collect ${Math.round(f.collectDuration ?? 0)} ${f.result?.state} ${Math.round(f.result?.duration ?? 0)}`).join('; '));
}
await ctx.close();
