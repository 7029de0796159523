// A vitest reporter for mutation runs: a test file that fails to load becomes one failed test.
//
// Stryker's vitest runner builds a mutant's result from the tests it collected, and a file whose import
// throws collects none, so a static mutant that stops a module from loading (e.g. `if (true) throw` in a
// processor factory run at import) counted as survived (stryker-js issue #6150, open in 9.6.1 and 10.0.0).
// Here such a file gains a failed test carrying its load error, which Stryker counts as the kill it is.
//
// With `bail` set (Stryker sets 1), a file that fails to load also ends the run, as a failed test does: a
// static mutant that breaks an import used to run every other file of the suite first (about 40 s each).

import type { Reporter, TestModule, Vitest } from 'vitest/node';

type FileTask = ReturnType<Vitest['state']['getFiles']>[number];
type TestTask = Extract<FileTask['tasks'][number], { type: 'test' }>;

export default class LoadFailureReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestModuleEnd(testModule: TestModule): void {
    const loadFailed = testModule.state() === 'failed' && testModule.children.size === 0;
    if (!this.vitest?.config.bail || !loadFailed) return;
    void this.vitest.cancelCurrentRun('test-failure');
  }

  // The files as Stryker reads them after the run: the state's, not the reported modules' copies.
  onTestRunEnd(): void {
    for (const file of this.vitest?.state.getFiles() ?? []) {
      if (file.result?.state !== 'fail' || file.tasks.length > 0) continue;
      // Only the fields Stryker's runner reads; nothing runs this task.
      const failed = {
        type: 'test',
        id: `${file.id}_load`,
        name: 'the test file loads',
        mode: 'run',
        file,
        suite: file,
        context: undefined,
        meta: {},
        annotations: [],
        artifacts: [],
        tags: [],
        timeout: 0,
        result: { state: 'fail', errors: file.result.errors ?? [], duration: 0 },
      } as unknown as TestTask;
      file.tasks.push(failed);
    }
  }
}
