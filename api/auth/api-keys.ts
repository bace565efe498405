import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { OrchConfig } from '../../core/config';
import { API_KEY_SCOPES, TENANT_PATTERN, type ApiKeyScope } from '../../core/security-config';

/** Where `npm start` keeps the development key's hash, inside the data dir. Never the key itself. */
export const DEV_KEY_FILE = 'dev-api-key.json';
/** The keys `llama-orch keys create` adds (hashes only), inside the data dir; read whenever it exists. */
export const MANAGED_KEYS_FILE = 'api-keys.json';
/** Keys longer than this are refused before hashing: nothing we mint comes close. */
const MAX_KEY_LENGTH = 256;

export interface Principal {
  readonly keyId: string;
  readonly tenant: string;
  readonly scopes: readonly ApiKeyScope[];
}

interface StoredKey extends Principal {
  readonly digest: Buffer;
}

const KeyEntrySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  tenant: z.string().regex(TENANT_PATTERN),
  scopes: z.array(z.enum(API_KEY_SCOPES)).min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
const KeysFileSchema = z.strictObject({ keys: z.array(KeyEntrySchema) });
export type ApiKeyEntry = z.infer<typeof KeyEntrySchema>;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key: 32 bytes, base64url, with a prefix that makes a leaked key easy to grep for. */
export function mintApiKey(): string {
  return `lok_${randomBytes(32).toString('base64url')}`;
}

/**
 * The known API keys, as SHA-256 digests only (ORCH-3035). A lookup hashes the presented key and
 * compares it with every stored digest in constant time, without stopping at a match, so the time
 * taken says nothing about which key, or how much of one, matched.
 */
/** Distinct valid keys remembered per store; past this the memory starts over (a bound, not an LRU). */
const MAX_CACHED_KEYS = 4_096;

export class ApiKeyStore {
  private readonly keys: readonly StoredKey[];
  /** Valid keys seen lately → their principal; a config reload builds a new store, so a revoked key is gone with it. */
  private readonly recent = new Map<string, Principal>();

  constructor(entries: readonly ApiKeyEntry[]) {
    this.keys = entries.map((entry) => ({ keyId: entry.id, tenant: entry.tenant, scopes: entry.scopes, digest: Buffer.from(entry.sha256, 'hex') }));
  }

  get size(): number {
    return this.keys.length;
  }

  lookup(presented: string): Principal | undefined {
    if (presented.length === 0 || presented.length > MAX_KEY_LENGTH) return undefined;
    // A key that matched before is served from memory: a client sends the same key on every request, and
    // hashing it and walking every stored digest each time is work a cached answer serves. Only exact,
    // valid keys are cached, so a hit tells a caller nothing it did not already present.
    const cached = this.recent.get(presented);
    if (cached) return cached;
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: StoredKey | undefined;
    for (const key of this.keys) {
      if (timingSafeEqual(digest, key.digest) && found === undefined) found = key;
    }
    if (!found) return undefined;
    const principal: Principal = { keyId: found.keyId, tenant: found.tenant, scopes: found.scopes };
    if (this.recent.size >= MAX_CACHED_KEYS) this.recent.clear();
    this.recent.set(presented, principal);
    return principal;
  }
}

/**
 * The keys of `auth.keys`, `auth.keys_file` (relative to the config file's folder) and, with
 * `auth.dev_key`, the development key in the data dir (relative to the working directory, as `npm start`),
 * and the keys the CLI manages in the data dir (`llama-orch keys`).
 */
export function loadApiKeys(config: Pick<OrchConfig, 'auth' | 'data_dir'>, where: { configDir: string; cwd?: string }): ApiKeyStore {
  const entries: ApiKeyEntry[] = [...config.auth.keys];
  if (config.auth.keys_file) entries.push(...readKeysFile(resolve(where.configDir, config.auth.keys_file)));
  if (config.auth.dev_key) {
    const devFile = devKeyPath(config, where.cwd);
    if (existsSync(devFile)) entries.push(...readKeysFile(devFile));
  }
  const managed = managedKeysPath(config, where.cwd);
  if (existsSync(managed)) entries.push(...readKeysFile(managed));
  return new ApiKeyStore(entries);
}

export function managedKeysPath(config: Pick<OrchConfig, 'data_dir'>, cwd: string = process.cwd()): string {
  return join(resolve(cwd, config.data_dir), MANAGED_KEYS_FILE);
}

export function devKeyPath(config: Pick<OrchConfig, 'data_dir'>, cwd: string = process.cwd()): string {
  return join(resolve(cwd, config.data_dir), DEV_KEY_FILE);
}

export function readKeysFile(path: string): ApiKeyEntry[] {
  const parsed = KeysFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`${path}: not a keys file ({"keys":[{id, tenant, scopes, sha256}]}): ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data.keys;
}
