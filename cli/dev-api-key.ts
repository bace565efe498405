import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { devKeyPath, hashApiKey, mintApiKey } from '../api/auth/api-keys';
import type { OrchConfig } from '../core/config';

export type DevApiKey = { readonly created: true; readonly key: string; readonly path: string } | { readonly created: false; readonly path: string };

/**
 * The embedded default's development key (`auth.dev_key: true`): minted once, stored only as its SHA-256
 * in `<data_dir>/dev-api-key.json`, and shown once. Deleting the file mints a new one at the next start.
 */
export function ensureDevApiKey(config: Pick<OrchConfig, 'data_dir'>): DevApiKey {
  const path = devKeyPath(config);
  if (existsSync(path)) return { created: false, path };
  const key = mintApiKey();
  mkdirSync(dirname(path), { recursive: true });
  const entry = { id: 'dev', tenant: 'dev', scopes: ['data', 'control'], sha256: hashApiKey(key) };
  writeFileSync(path, `${JSON.stringify({ keys: [entry] }, null, 2)}\n`, { mode: 0o600 });
  return { created: true, key, path };
}

/** Printed to stderr once, after the banner; the key is never logged. */
export function printDevApiKey(devKey: DevApiKey, apiUrl: string): void {
  const lines = devKey.created
    ? [
        'Development API key (shown once; only its hash is kept in ' + devKey.path + '):',
        `  export ORCH_API_KEY=${devKey.key}`,
        `  curl -s -H "Authorization: Bearer $ORCH_API_KEY" ${apiUrl}/v1/pools/mock/health`,
        '  (every /v1 request needs the header; X-API-Key: $ORCH_API_KEY works too)',
      ]
    : [`API keys are on. The development key was shown when it was created; delete ${devKey.path} to mint a new one at the next start.`];
  process.stderr.write(`${lines.join('\n')}\n\n`);
}
