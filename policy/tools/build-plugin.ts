import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { POLICY_ABI } from '../sdk/abi-version';
import { buildComponentFromWat } from '../host/jco-bridge';
import { repoFile } from './repo-file';

/**
 * Builds a policy plugin from WAT: `jco parse` (WAT → core module), `jco embed` (the WIT world as
 * a custom section), `jco new` (core module → component). Output is a deterministic function of
 * the inputs, so it is cached by their hash and never committed.
 */

export interface WatBuildInput {
  readonly wat: string;
  /** Defaults to policy/wit/policy.wit. */
  readonly witSource?: string;
  /** Defaults to `policy-plugin`, the world of policy.wit. */
  readonly world?: string;
}

export function policyWitSource(): string {
  return readFileSync(repoFile('policy/wit/policy.wit'), 'utf8');
}

export function buildWatPlugin(input: WatBuildInput): Promise<Uint8Array> {
  return buildComponentFromWat(input.wat, input.witSource ?? policyWitSource(), input.world ?? POLICY_ABI.worldName);
}

/** Git-ignored: node_modules/.cache is the usual home of build caches. */
export function defaultCacheDir(): string {
  return path.join(path.dirname(repoFile('package.json')), 'node_modules', '.cache', 'llama-orch-policy');
}

function jcoVersion(): string {
  const manifest = JSON.parse(readFileSync(repoFile('node_modules/@bytecodealliance/jco/package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** Builds (or reuses) the component for `input`; returns the path of the `.wasm`. */
export async function buildWatPluginCached(input: WatBuildInput, cacheDir: string = defaultCacheDir()): Promise<string> {
  const witSource = input.witSource ?? policyWitSource();
  const world = input.world ?? POLICY_ABI.worldName;
  const key = createHash('sha256').update(`${jcoVersion()}\0${world}\0${witSource}\0${input.wat}`).digest('hex').slice(0, 32);
  const output = path.join(cacheDir, `${key}.wasm`);
  if (existsSync(output)) return output;
  const component = await buildComponentFromWat(input.wat, witSource, world);
  mkdirSync(cacheDir, { recursive: true });
  // Write then rename, so a parallel test run never reads half a file.
  const partial = `${output}.${process.pid}.partial`;
  writeFileSync(partial, component);
  renameSync(partial, output);
  return output;
}

/** The example plugin of policy/examples/<name>/plugin.wat, built and cached. */
export function buildExamplePlugin(name = 'max-tokens-cap', cacheDir?: string): Promise<string> {
  const wat = readFileSync(repoFile(`policy/examples/${name}/plugin.wat`), 'utf8');
  return buildWatPluginCached({ wat }, cacheDir);
}

async function main(argv: readonly string[]): Promise<void> {
  const [input, output] = argv;
  if (input === undefined || output === undefined) {
    process.stderr.write('usage: node dist/policy/tools/build-plugin.js <plugin.wat> <plugin.wasm>\n');
    process.exitCode = 2;
    return;
  }
  const component = await buildWatPlugin({ wat: readFileSync(input, 'utf8') });
  writeFileSync(output, component);
  process.stdout.write(`${output}: ${component.length} bytes, sha256 ${createHash('sha256').update(component).digest('hex')}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
