import { ensureLlamaServer } from '../../cli/llama-server-build';
import type { LlamaServerBinary } from '../../cli/llama-server-build';
import { DEFAULT_SYNTHETIC_MODEL_SPEC, ensureSyntheticModel } from '../../cli/model-artifacts';
import type { ModelArtifact } from '../../cli/model-artifacts';
import { ErrorCode } from '../../core/errors';
import type { CompletionRequest, CompletionSummary, EngineToken } from '../../gpu-workers/engines/engine-adapter';
import { createLlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import type { LlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { llamaServerFlags, startLlamaServer } from '../support/llama-server-process';
import type { LlamaServerProcess } from '../support/llama-server-process';

/**
 * The llama.cpp adapter against a real llama-server: the pinned build (built into the cache on the
 * first run, several minutes) serving the synthetic random-weight model. Never skipped: a missing
 * binary is built, not an excuse.
 */

/** The first run compiles llama.cpp (~5 min on 2 cores, more on a loaded machine). */
const PROVISION_TIMEOUT_MS = 30 * 60_000;
const CONTEXT_TOKENS = 512;

let binary: LlamaServerBinary;
let model: ModelArtifact;
let server: LlamaServerProcess | undefined;
let adapter: LlamaCppAdapter | undefined;

/** The deterministic profile of engines.md §1.6, each optional flag gated on the build's --help. */
function serverArguments(flags: ReadonlySet<string>, backend: LlamaServerBinary['backend']): string[] {
  const args = ['-np', '1', '-c', String(CONTEXT_TOKENS), '-b', '512', '-ub', '512', '-t', '2', '--seed', '42', '--metrics'];
  const optional: readonly (readonly [string, ...string[]])[] = [
    ['--slots'],
    ['--no-webui'],
    // One sequence per batch: continuous batching changes the batch shape and with it the float order.
    ['--no-cont-batching'],
    // A RAM prompt cache shared across requests would make one request's result depend on another's.
    ['--cache-ram', '0'],
    // Pinned, or "fit" picks a layer split from the free device memory of the moment.
    ['--n-gpu-layers', backend === 'cuda' ? '99' : '0'],
    ['--fit', 'off'],
  ];
  for (const option of optional) if (flags.has(option[0])) args.push(...option);
  return args;
}

beforeAll(async () => {
  binary = await ensureLlamaServer();
  model = await ensureSyntheticModel(DEFAULT_SYNTHETIC_MODEL_SPEC);
  const flags = await llamaServerFlags(binary.path);
  server = await startLlamaServer({ binary: binary.path, modelPath: model.path, args: serverArguments(flags, binary.backend) });
  adapter = createLlamaCppAdapter({ baseUrl: server.baseUrl });
}, PROVISION_TIMEOUT_MS);

afterAll(async () => {
  await adapter?.close();
  await server?.stop();
});

function engine(): LlamaCppAdapter {
  if (adapter === undefined) throw new Error('llama-server did not start');
  return adapter;
}

interface Completion {
  readonly tokens: readonly EngineToken[];
  readonly summary: CompletionSummary;
}

async function complete(request: CompletionRequest, signal = new AbortController().signal): Promise<Completion> {
  const stream = engine().complete(request, signal);
  const tokens: EngineToken[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done === true) return { tokens, summary: next.value };
    tokens.push(next.value);
  }
}

/** A sample's value from Prometheus text, e.g. `llamacpp:n_decode_total 12`. */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} missing from:\n${text}`);
  return Number(line.slice(name.length + 1));
}

const REQUEST: CompletionRequest = { prompt: 'Once upon a time', maxTokens: 16, seed: 42, samplerProfile: 'v1', slotId: 0 };

describe('llama.cpp adapter against a real llama-server', () => {
  it('ORCH-3054: health is live and ready once the model is loaded', async () => {
    await expect(engine().health()).resolves.toEqual({ live: true, ready: true });
  });

  it('ORCH-3054: properties report the slot count, the context size and engine_version from build_info', async () => {
    const properties = await engine().properties();
    expect(properties).toEqual({ totalSlots: 1, contextSize: CONTEXT_TOKENS, engineVersion: binary.buildInfo, modelPath: model.path });
    expect(properties.engineVersion).toMatch(/^b\d+-[0-9a-f]+$/);
  });

  it('ORCH-3054: a completion streams tokens over SSE and ends with a summary', async () => {
    const { tokens, summary } = await complete(REQUEST);
    expect(summary).toMatchObject({ tokensOut: REQUEST.maxTokens, stopReason: 'limit', slotId: 0 });
    expect(summary.tokensIn).toBeGreaterThan(0);
    expect(summary.decodeMs).toBeGreaterThan(0);
    // Tokens whose text is empty (or half a character) are folded into later ones, never sent empty.
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.length).toBeLessThanOrEqual(REQUEST.maxTokens);
    expect(tokens.map((token) => token.index)).toEqual(tokens.map((_, index) => index));
    for (const token of tokens) expect(token.text.length).toBeGreaterThan(0);
    // Partial chunks say id_slot -1 ("not assigned yet") in this build: never pass that on as a slot.
    for (const token of tokens) expect(token.slotId === undefined || token.slotId === 0).toBe(true);
  });

  it('ORCH-3054: the metrics scrape is llama-server Prometheus text that counts our tokens', async () => {
    const before = await engine().scrapeMetrics();
    await complete(REQUEST);
    const after = await engine().scrapeMetrics();
    expect(metric(after, 'llamacpp:tokens_predicted_total') - metric(before, 'llamacpp:tokens_predicted_total')).toBe(REQUEST.maxTokens);
    expect(metric(after, 'llamacpp:prompt_tokens_total')).toBeGreaterThan(metric(before, 'llamacpp:prompt_tokens_total'));
    expect(metric(after, 'llamacpp:requests_processing')).toBe(0);
  });

  it('ORCH-3045/ORCH-3050: two identical seeded requests give byte-identical token streams', async () => {
    const request: CompletionRequest = { ...REQUEST, prompt: 'The quick brown fox', maxTokens: 64, seed: 1234 };
    const first = await complete(request);
    const second = await complete(request);
    const bytes = (completion: Completion): Buffer => Buffer.from(JSON.stringify(completion.tokens.map((token) => [token.index, token.text])));
    expect(bytes(second).equals(bytes(first))).toBe(true);
    expect({ ...second.summary, decodeMs: 0 }).toEqual({ ...first.summary, decodeMs: 0 });
    // The seed is what fixes the output: another seed samples another stream.
    const reseeded = await complete({ ...request, seed: 4321 });
    expect(reseeded.tokens.map((token) => token.text).join('')).not.toBe(first.tokens.map((token) => token.text).join(''));
  });

  it('ORCH-3017/ORCH-3026: an abort mid-stream stops forwarding at once and llama-server frees the slot (engines.md §1.5)', async () => {
    // Long enough that a server ignoring the disconnect (the llama.cpp #24496 regression) would
    // decode hundreds of tokens more, which the decode counter shows even after the slot is free.
    const maxTokens = CONTEXT_TOKENS - 32;
    const before = metric(await engine().scrapeMetrics(), 'llamacpp:n_decode_total');
    const controller = new AbortController();
    const stream = engine().complete({ ...REQUEST, maxTokens }, controller.signal);
    for (let received = 0; received < 3; received++) expect((await stream.next()).done).toBe(false);
    controller.abort();
    await expect(stream.next()).rejects.toMatchObject({ name: 'AbortError' });

    await engine().confirmStopped(0, 5_000);
    const decodes = metric(await engine().scrapeMetrics(), 'llamacpp:n_decode_total') - before;
    expect(decodes).toBeLessThan(maxTokens / 4);
    // The slot serves the next request normally.
    await expect(complete(REQUEST)).resolves.toMatchObject({ summary: { tokensOut: REQUEST.maxTokens } });
  });

  it('a prompt longer than the context is refused as INVALID_PARAMS', async () => {
    const prompt = 'lorem ipsum dolor sit amet '.repeat(200);
    await expect(complete({ ...REQUEST, prompt })).rejects.toMatchObject({ code: ErrorCode.INVALID_PARAMS });
    await expect(engine().health()).resolves.toEqual({ live: true, ready: true });
  });
});
