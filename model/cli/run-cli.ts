import type { Command } from 'commander';
import { DatasetError } from '../train/dataset';

/**
 * Runs a model CLI the same way everywhere: a data layout the user can fix (DatasetError) exits 2 with its
 * message alone; any other failure exits 1 at once (extraction workers may still hold the event loop), with
 * the stack when DEBUG is set.
 */
export async function runCli(name: string, program: Command): Promise<void> {
  try {
    await program.parseAsync();
  } catch (err) {
    if (err instanceof DatasetError) {
      console.error(`${name}: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    console.error(`${name}: ${process.env.DEBUG ? error.stack : error.message}`);
    process.exit(1);
  }
}
