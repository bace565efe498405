import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLlamaServer, parseBuildInfo } from '../../cli/llama-server-build';
import { PROVISION_TIMEOUT_MS, cpuReplicaOptions, llamaServerPool, postTask, provisionSyntheticEngine } from '../support/llama-server-pool';
import { readStream } from '../support/sse-client';
import { startTestStack, taskRequest } from '../support/stack';
import type { TestStack } from '../support/stack';

/**
 * The determinism suite (ORCH-3045, ORCH-3047, ORCH-3050, OC-CORE-1030, OC-TEST-7001–7003): every seed of the corpus
 * runs through the public API once on replica A alone and once on replica B alone — two replicas of
 * one replica set (same llama-server build, model digest, ctx and sampler profile) started with
 * llama.cpp's deterministic settings (one slot, no continuous batching, no prompt cache reuse) —
 * and the two token streams must be byte-identical. Determinism is claimed per build and device
 * only (ORCH-3047): nothing here compares across engine or model versions.
 */

const SEEDS_FILE = join(__dirname, '..', 'determinism', 'seeds.txt');
const CONTEXT_TOKENS = 512;
const MAX_TOKENS = 48;
const PREFIX_TOKENS = 32;
const CONCURRENT_TASKS = 8;
const PROMPTS = ['Once upon a time', 'The orchestrator said', 'Seeds decide', 'A queue of GPUs'];

interface Transcript {
  readonly seed: number;
  readonly tokens: readonly string[];
  readonly tokensOut: unknown;
  readonly engineVersion: unknown;
}

function readSeeds(): number[] {
  return readFileSync(SEEDS_FILE, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map(Number);
}

let stack: TestStack;

beforeAll(async () => {
  await provisionSyntheticEngine();
  stack = await startTestStack({ ctx: CONTEXT_TOKENS, replicas: 2, inProcessReplicas: 0, custom: llamaServerPool(), replicaOptions: cpuReplicaOptions });
}, PROVISION_TIMEOUT_MS);

afterAll(async () => {
  await stack.stop();
});

async function runSeed(seed: number, index: number): Promise<Transcript> {
  const body = taskRequest(stack, { seed, ctx: CONTEXT_TOKENS, max_tokens: MAX_TOKENS, prompt: PROMPTS[index % PROMPTS.length], deadline_ms: 60_000 });
  const admitted = await postTask(stack.url, body);
  if (admitted.statusCode !== 202) throw new Error(`seed ${seed}: admission answered ${admitted.statusCode} ${JSON.stringify(admitted.body)}`);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  const end = events.at(-1);
  if (end?.event !== 'end') throw new Error(`seed ${seed}: the stream ended with ${JSON.stringify(end)}`);
  const dispatched = events.find((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched');
  return {
    seed,
    tokens: events.filter((event) => event.event === 'token').map((event) => String(event.data['t'])),
    tokensOut: end.data['tokens_out'],
    engineVersion: dispatched?.data['engine_version'],
  };
}

/** Runs the whole corpus on the one replica that is up, a few tasks at a time. */
async function runCorpus(seeds: readonly number[]): Promise<Transcript[]> {
  const transcripts: Transcript[] = new Array<Transcript>(seeds.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < seeds.length) {
      const index = next++;
      transcripts[index] = await runSeed(seeds[index] ?? 0, index);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT_TASKS }, lane));
  return transcripts;
}

/** One replica of the pool alone, so every task of the run lands on it. */
async function runOnReplica(replicaIndex: number, seeds: readonly number[]): Promise<{ replicaId: string; transcripts: Transcript[] }> {
  const replica = await stack.addPoolReplica(replicaIndex);
  try {
    const transcripts = await runCorpus(seeds);
    return { replicaId: replica.replicaId, transcripts };
  } finally {
    await replica.stop();
  }
}

const streamBytes = (tokens: readonly string[]): Buffer => Buffer.from(JSON.stringify(tokens), 'utf8');

/** Writes the per-seed token differences for a human to read, and returns the file. */
function writeTokenDiff(a: readonly Transcript[], b: readonly Transcript[], divergent: readonly number[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'llama-orch-determinism-')), 'token-diff.json');
  const report = divergent.map((index) => {
    const left = a[index]?.tokens ?? [];
    const right = b[index]?.tokens ?? [];
    let first = 0;
    while (first < Math.min(left.length, right.length) && left[first] === right[first]) first += 1;
    return { seed: a[index]?.seed, first_divergent_token: first, replica_a: left.slice(first, first + 8), replica_b: right.slice(first, first + 8) };
  });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

test('OC-TEST-7003: the seed corpus is stable and holds exactly 64 seeds (1001..1064)', () => {
  const seeds = readSeeds();
  expect(seeds).toHaveLength(64);
  expect(seeds).toEqual(Array.from({ length: 64 }, (_unused, index) => 1001 + index));
});

test('ORCH-3045 ORCH-3050 OC-CORE-1030 OC-TEST-7001 OC-TEST-7002: two replicas of one replica set stream byte-identical tokens for every seed', async () => {
  const seeds = readSeeds();
  const a = await runOnReplica(0, seeds);
  const b = await runOnReplica(1, seeds);
  expect(a.replicaId).not.toBe(b.replicaId);
  // The engine_version of the {…, engine_version, model_digest} tuple the streams claim is the binary's own,
  // as its --version prints it (not a recorded or made-up one), on every stream of both replicas.
  const binary = await ensureLlamaServer();
  const version = spawnSync(binary.path, ['--version'], { encoding: 'utf8' });
  const printed = parseBuildInfo(`${version.stdout}${version.stderr}`);
  for (const transcript of [...a.transcripts, ...b.transcripts]) expect(transcript.engineVersion).toBe(printed);

  const divergentPrefix: number[] = [];
  const divergentFull: number[] = [];
  a.transcripts.forEach((left, index) => {
    const right = b.transcripts[index];
    if (!right) throw new Error(`no replica B transcript for seed ${left.seed}`);
    if (!streamBytes(left.tokens.slice(0, PREFIX_TOKENS)).equals(streamBytes(right.tokens.slice(0, PREFIX_TOKENS)))) divergentPrefix.push(index);
    if (!streamBytes(left.tokens).equals(streamBytes(right.tokens)) || left.tokensOut !== right.tokensOut) divergentFull.push(index);
  });
  const divergent = [...new Set([...divergentPrefix, ...divergentFull])];
  if (divergent.length > 0) {
    const diff = writeTokenDiff(a.transcripts, b.transcripts, divergent);
    throw new Error(`${divergent.length} of ${seeds.length} seeds diverged between ${a.replicaId} and ${b.replicaId}; token diff in ${diff}`);
  }
  // The suite would pass vacuously on empty streams: every seed produced tokens (a sampled EOS may end one early).
  for (const transcript of a.transcripts) expect(transcript.tokens.length).toBeGreaterThan(0);
  const tokensSeen = a.transcripts.reduce((sum, transcript) => sum + transcript.tokens.length, 0);
  expect(tokensSeen).toBeGreaterThan((seeds.length * MAX_TOKENS) / 2);
  // And the seed matters: the corpus is not one stream repeated.
  expect(new Set(a.transcripts.map((transcript) => transcript.tokens.join(''))).size).toBeGreaterThan(seeds.length / 2);
});
