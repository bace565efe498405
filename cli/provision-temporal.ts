import { ensureTemporalBinary } from './temporal-binary';
import { runCommand } from './run-command';

/** `npm run provision:temporal`: installs (once) and prints the Temporal CLI the stack and tests use. */
async function main(): Promise<void> {
  const binary = await ensureTemporalBinary();
  process.stderr.write(`[llama-orch] Temporal CLI: ${binary}\n`);
  await runCommand(binary, ['--version']);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
