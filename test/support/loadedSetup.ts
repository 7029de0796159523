// Vitest global setup for the mutation runs: builds the shared loaded fixture before any test file, in the
// main process where no Stryker mutant is active, so that the fixture never holds a mutant's output; then
// serves private copies of it to the test files (see fixtureServer.ts).

import type { TestProject } from 'vitest/node';
import { startFixtureServer } from './fixtureServer.js';
import { LOADED_FIXTURE, loadedFolder } from './loaded.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startFixtureServer(await loadedFolder(LOADED_FIXTURE));
  project.provide('fixtureSocket', server.path);
  return () => server.close();
}
