// Vitest global setup for the mutation runs: builds the shared loaded fixture before any test file, in the
// main process where no Stryker mutant is active, so that the fixture never holds a mutant's output.

import { LOADED_FIXTURE, loadedFolder } from './loaded.js';

export default async function setup(): Promise<void> {
  await loadedFolder(LOADED_FIXTURE);
}
