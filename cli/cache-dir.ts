import { homedir } from 'node:os';
import { join } from 'node:path';

/** Everything we install (Temporal CLI, engine builds, models) lives here, outside the clone, and is reused. */
export function cacheDir(): string {
  const explicit = process.env['LLAMA_ORCH_CACHE'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'llama-orch');
}
