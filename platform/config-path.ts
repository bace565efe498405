import { parseArgs } from 'node:util';

export const DEFAULT_CONFIG_PATH = 'config/llama-orch.yaml';

/** `--config PATH`, else $ORCH_CONFIG, else the embedded default in config/. */
export function configPathFromArgs(args: readonly string[]): string {
  const { values } = parseArgs({ args: [...args], options: { config: { type: 'string' } }, strict: false });
  const fromArgs = values['config'];
  if (typeof fromArgs === 'string') return fromArgs;
  return process.env['ORCH_CONFIG'] ?? DEFAULT_CONFIG_PATH;
}
