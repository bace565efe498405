import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PolicyPluginConfig } from '../config';
import { POLICY_ABI, POLICY_ABI_VERSION, parseSemVer } from '../sdk/abi-version';
import { runJcoJob } from './jco-bridge';
import { capMemoryPages, MemoryLimitError, pagesForBytes } from './memory-limits';
import { PolicyPluginLoadError } from './plugin-load-error';
import type { PluginGrants } from './sandbox-protocol';
import type { WasmModule } from './wasm-types';
import { webAssembly } from './wasm-types';

/** A plugin checked and prepared for sandboxed instantiation; the worker is started from this. */
export interface LoadedPlugin {
  readonly id: string;
  readonly version: string;
  /** The ABI version the plugin was built against, from its exported interface name. */
  readonly abiVersion: string;
  readonly exportName: string;
  readonly sha256: string;
  readonly bindingsSource: string;
  readonly coreModules: Readonly<Record<string, WasmModule>>;
  /** Unversioned interfaces the plugin imports (all granted, or it would not have loaded). */
  readonly imports: readonly string[];
}

/** The interfaces each grant opens. Anything not listed here is never provided. */
const GRANTED_INTERFACES: Readonly<Record<keyof PluginGrants, readonly string[]>> = {
  clocks: ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock'],
  random: ['wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed'],
};

function allowedImports(grants: PluginGrants): Set<string> {
  const allowed = new Set<string>();
  for (const grant of Object.keys(GRANTED_INTERFACES) as (keyof PluginGrants)[]) {
    if (grants[grant]) for (const name of GRANTED_INTERFACES[grant]) allowed.add(name);
  }
  return allowed;
}

function explainImport(name: string): string {
  for (const [grant, names] of Object.entries(GRANTED_INTERFACES)) {
    if (names.includes(name)) return `${name} (needs grants.${grant}: true)`;
  }
  return `${name} (never granted)`;
}

/**
 * Checks the ABI version carried by the plugin's exported interface name (OC-POLICY-4002): the same
 * MAJOR, and a MINOR no newer than this host's, since a newer plugin may read fields we never send.
 */
function checkAbi(pluginId: string, exports: readonly string[]): { abiVersion: string; exportName: string } {
  const prefix = `${POLICY_ABI.packageName}/${POLICY_ABI.interfaceName}@`;
  const exportName = exports.find((name) => name.startsWith(prefix));
  if (exportName === undefined) {
    throw new PolicyPluginLoadError(
      pluginId,
      'abi-mismatch',
      `it does not export ${prefix}${POLICY_ABI.major}.x (its exports: ${exports.join(', ') || 'none'}); build it against policy/wit/policy.wit`,
    );
  }
  const abiVersion = exportName.slice(prefix.length);
  const version = parseSemVer(abiVersion);
  if (version === undefined) throw new PolicyPluginLoadError(pluginId, 'abi-mismatch', `unreadable ABI version "${abiVersion}"`);
  if (version.major !== POLICY_ABI.major) {
    throw new PolicyPluginLoadError(
      pluginId,
      'abi-mismatch',
      `it was built for policy ABI ${abiVersion}, and this host speaks ${POLICY_ABI_VERSION} (MAJOR ${POLICY_ABI.major}); ` +
        `rebuild it against policy/wit/policy.wit ${POLICY_ABI.major}.x (migration notes: .specs/policy-abi.md)`,
    );
  }
  if (version.minor > POLICY_ABI.minor) {
    throw new PolicyPluginLoadError(
      pluginId,
      'abi-mismatch',
      `it needs policy ABI ${abiVersion}, newer than this host's ${POLICY_ABI_VERSION}; upgrade llama-orch or rebuild the plugin against ${POLICY_ABI_VERSION}`,
    );
  }
  return { abiVersion, exportName };
}

/** Reads, verifies, transpiles (jco) and compiles a plugin; every refusal names its cause. */
export async function loadPlugin(config: PolicyPluginConfig, baseDir: string): Promise<LoadedPlugin> {
  const { id } = config;
  const file = path.resolve(baseDir, config.path);
  let component: Uint8Array;
  try {
    component = new Uint8Array(await readFile(file));
  } catch (error) {
    throw new PolicyPluginLoadError(id, 'unreadable', `cannot read ${file}: ${(error as Error).message}`);
  }
  const sha256 = createHash('sha256').update(component).digest('hex');
  if (config.sha256 !== undefined && config.sha256 !== sha256) {
    throw new PolicyPluginLoadError(id, 'integrity', `${file} has sha256 ${sha256}, the config pins ${config.sha256}`);
  }

  let transpiled;
  try {
    transpiled = await runJcoJob({ kind: 'transpile', component });
  } catch (error) {
    throw new PolicyPluginLoadError(id, 'not-a-component', `${file} is not a valid WebAssembly component: ${(error as Error).message}`);
  }
  if (transpiled.kind !== 'transpiled') throw new PolicyPluginLoadError(id, 'not-a-component', 'jco returned no bindings');

  const { abiVersion, exportName } = checkAbi(id, transpiled.exports);

  // OC-POLICY-4010: refuse before anything runs, naming every import the grants do not cover.
  const allowed = allowedImports(config.grants);
  const forbidden = transpiled.imports.filter((name) => !allowed.has(name));
  if (forbidden.length > 0) {
    throw new PolicyPluginLoadError(id, 'forbidden-import', `it imports ${forbidden.map(explainImport).join(', ')}`);
  }

  const maxPages = pagesForBytes(config.limits.memory_bytes);
  const coreModules: Record<string, WasmModule> = {};
  for (const [name, bytes] of Object.entries(transpiled.files)) {
    if (!name.endsWith('.wasm')) continue;
    try {
      coreModules[name] = await webAssembly().compile(capMemoryPages(bytes, maxPages).bytes);
    } catch (error) {
      const reason = (error as Error).name === MemoryLimitError.name ? 'memory' : 'not-a-component';
      throw new PolicyPluginLoadError(id, reason, `core module ${name}: ${(error as Error).message}`);
    }
  }
  const bindings = transpiled.files['plugin.js'];
  if (bindings === undefined) throw new PolicyPluginLoadError(id, 'not-a-component', 'jco produced no bindings module');

  return {
    id,
    version: config.version,
    abiVersion,
    exportName,
    sha256,
    bindingsSource: new TextDecoder().decode(bindings),
    coreModules,
    imports: transpiled.imports,
  };
}
