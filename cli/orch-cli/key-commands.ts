import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hashApiKey, mintApiKey, readKeysFile, type ApiKeyEntry } from '../../api/auth/api-keys';
import { API_KEY_SCOPES, type ApiKeyScope } from '../../core/security-config';
import type { CliOutput } from './cli-output';

/**
 * `keys`: API keys in the keys file the gateways read (`auth.keys_file`, or `<data_dir>/api-keys.json`,
 * which the CLI manages). A key is shown once; only its SHA-256 is stored. A config reload (the CLI asks
 * for one) or a restart makes the change live.
 */
export function readKeys(path: string): ApiKeyEntry[] {
  return existsSync(path) ? readKeysFile(path) : [];
}

function writeKeys(path: string, keys: readonly ApiKeyEntry[]): void {
  mkdirSync(dirname(path), { recursive: true });
  // Whole or not at all: the gateways may read it at any moment.
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}

export function createKey(path: string, options: { readonly tenant: string; readonly scopes: readonly string[]; readonly id: string | undefined }, output: CliOutput): void {
  const scopes = options.scopes.map((scope): ApiKeyScope => {
    const known = API_KEY_SCOPES.find((candidate) => candidate === scope);
    if (!known) throw new Error(`unknown scope ${scope} (${API_KEY_SCOPES.join(', ')})`);
    return known;
  });
  const keys = readKeys(path);
  const id = options.id ?? `${options.tenant}-${keys.length + 1}`;
  if (keys.some((key) => key.id === id)) throw new Error(`a key with id ${id} exists already in ${path}`);
  const key = mintApiKey();
  writeKeys(path, [...keys, { id, tenant: options.tenant, scopes, sha256: hashApiKey(key) }]);
  output.result(`key ${id} for tenant ${options.tenant} (${scopes.join(', ')}) — shown once:\n  ${key}`, { id, tenant: options.tenant, scopes, key, keys_file: path });
}

export function revokeKey(path: string, id: string, output: CliOutput): void {
  const keys = readKeys(path);
  if (!keys.some((key) => key.id === id)) throw new Error(`no key with id ${id} in ${path}`);
  writeKeys(path, keys.filter((key) => key.id !== id));
  output.result(`key ${id} revoked`, { id, revoked: true, keys_file: path });
}

export function listKeys(path: string, output: CliOutput): void {
  output.table(readKeys(path).map((key) => ({ id: key.id, tenant: key.tenant, scopes: key.scopes.join(','), sha256: `${key.sha256.slice(0, 12)}…` })));
}
