import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { collect, failureCode } from '../support/adapter-results';
import type { CompletionRequest, EngineAdapter } from '../../gpu-workers/engines/engine-adapter';
import { VLLM_CAPABILITIES, createVllmAdapter } from '../../gpu-workers/engines/vllm/vllm-adapter';
import { mapVllmStopReason, tokenTexts } from '../../gpu-workers/engines/vllm/vllm-stream';

/** Real vLLM 0.32.0 answers (CPU, the synthetic model served as "tiny"), recorded as .specs/engines/vllm.md says. */
const FIXTURES = join(__dirname, '__fixtures__', 'vllm');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

const agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await agent.close();
});

type Reply = { readonly status?: number; readonly contentType?: string; readonly body: string; readonly pieceDelayMs?: number } | (() => { status?: number; body: string });

interface ReplayServer {
  readonly url: string;
  readonly requests: { method: string; path: string; body: string }[];
  /** Requests whose connection the client closed before the answer ended. */
  readonly closedEarly: string[];
}

/** A loopback server answering each `METHOD /path` with a recorded reply; a streamed one line by line. */
async function replayServer(routes: Record<string, Reply>): Promise<ReplayServer> {
  const requests: ReplayServer['requests'] = [];
  const closedEarly: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const key = `${req.method ?? ''} ${req.url ?? '/'}`;
      requests.push({ method: req.method ?? '', path: req.url ?? '/', body: Buffer.concat(chunks).toString('utf8') });
      const route = routes[key];
      if (route === undefined) {
        res.writeHead(404).end();
        return;
      }
      const reply = typeof route === 'function' ? route() : route;
      res.writeHead(reply.status ?? 200, { 'content-type': 'contentType' in reply && reply.contentType !== undefined ? reply.contentType : 'application/json' });
      res.on('close', () => {
        if (!res.writableFinished) closedEarly.push(key);
      });
      const delay = 'pieceDelayMs' in reply ? reply.pieceDelayMs : undefined;
      void (async () => {
        for (const piece of delay === undefined ? [reply.body] : reply.body.split(/(?<=\n\n)/)) {
          if (res.destroyed) return;
          res.write(piece);
          if (delay !== undefined) await sleep(delay);
        }
        res.end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, closedEarly };
}

const BASICS: Record<string, Reply> = {
  'GET /version': { body: fixture('version.json') },
  'GET /v1/models': { body: fixture('models.json') },
  'GET /health': { body: '' },
  'GET /metrics': { contentType: 'text/plain', body: fixture('metrics.txt') },
};

function adapterFor(url: string, maxNumSeqs?: number): EngineAdapter {
  const adapter = createVllmAdapter({ baseUrl: url, dispatcher: agent, maxNumSeqs, pollIntervalMs: 10 });
  closers.push(() => adapter.close());
  return adapter;
}

const REQUEST: CompletionRequest = { prompt: 'Hello world', maxTokens: 4, seed: 7, samplerProfile: 'v1' };

/** The token texts and ids of a recorded stream, read independently of the adapter. */
function recordedTokens(sse: string): { texts: string[]; ids: number[] } {
  const texts: string[] = [];
  const ids: number[] = [];
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice(6)) as { choices: { text: string; token_ids: number[] }[] };
    for (const choice of chunk.choices) {
      texts.push(choice.text);
      ids.push(...choice.token_ids);
    }
  }
  return { texts, ids };
}

describe('vLLM adapter (OC-ADAPT-5020, ORCH-3054) against recorded vLLM 0.32.0 answers', () => {
  test('ORCH-3032: properties come from the engine — /version, /v1/models max_model_len and root — and the slots from --max-num-seqs', async () => {
    const server = await replayServer(BASICS);
    const properties = await adapterFor(server.url, 3).properties();
    expect(properties).toEqual({ engineVersion: '0.32.0', contextSize: 4096, totalSlots: 3, modelPath: (JSON.parse(fixture('models.json')) as { data: { root: string }[] }).data[0]?.root });
    expect(await adapterFor(server.url).properties()).toMatchObject({ totalSlots: 1 });
    expect(VLLM_CAPABILITIES).toEqual({ slotPinning: false, promptCache: false, chatTemplate: true, determinism: 'seeded_sequential' });
  });

  test('ORCH-2001 OC-ADAPT-5010: a text prompt streams one token per token id, in order, with v1 sampler values and the seed sent; usage gives tokens_in, finish_reason length is the limit', async () => {
    const sse = fixture('completion-length.sse.txt');
    const server = await replayServer({ ...BASICS, 'POST /v1/completions': { contentType: 'text/event-stream', body: sse } });
    const { tokens, summary } = await collect(adapterFor(server.url).complete(REQUEST, new AbortController().signal));
    const recorded = recordedTokens(sse);
    expect(tokens.map((token) => token.text)).toEqual(recorded.texts);
    expect(tokens.map((token) => token.index)).toEqual(recorded.ids.map((_id, index) => index));
    expect(summary).toEqual({ tokensOut: 4, tokensIn: 2, stopReason: 'limit' });
    const sent = JSON.parse(server.requests.find((request) => request.path === '/v1/completions')?.body ?? '{}') as Record<string, unknown>;
    expect(sent).toMatchObject({
      model: 'tiny',
      prompt: 'Hello world',
      max_tokens: 4,
      seed: 7,
      stream: true,
      return_token_ids: true,
      logprobs: 0,
      stream_options: { include_usage: true },
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      min_p: 0.05,
      repetition_penalty: 1.0,
    });
  });

  test('ORCH-3045: a chunk carrying several tokens (vLLM coalesces when its API server falls behind) is split by each token\'s own text, so the tokens do not depend on where chunks end', async () => {
    const sse = fixture('completion-length.sse.txt');
    type Choice = { text: string; token_ids: number[]; logprobs: { tokens: string[] }; prompt_token_ids: number[] | null; finish_reason: string | null };
    const chunks = sse
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map((event) => JSON.parse(event.slice(6)) as { choices: Choice[] });
    const tokenChunks = chunks.filter((chunk) => chunk.choices.length > 0);
    // The first three token chunks as one, the way a coalesced chunk looks: texts, ids and logprob tokens joined.
    const merged = tokenChunks.slice(0, 3).map((chunk) => chunk.choices[0] as Choice);
    const first = merged[0] as Choice;
    const coalesced = {
      ...tokenChunks[0],
      choices: [
        {
          ...first,
          text: merged.map((choice) => choice.text).join(''),
          token_ids: merged.flatMap((choice) => choice.token_ids),
          logprobs: { ...first.logprobs, tokens: merged.flatMap((choice) => choice.logprobs.tokens) },
        },
      ],
    };
    const rest = chunks.slice(3);
    const body = [coalesced, ...rest].map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('') + 'data: [DONE]\n\n';
    const server = await replayServer({ ...BASICS, 'POST /v1/completions': { contentType: 'text/event-stream', body } });
    const { tokens, summary } = await collect(adapterFor(server.url).complete(REQUEST, new AbortController().signal));
    expect(tokens.map((token) => token.text)).toEqual(recordedTokens(sse).texts);
    expect(summary.tokensOut).toBe(4);
    // Pieces that do not add up to the chunk's text (a trimmed stop string): the text goes with the first token.
    expect(tokenTexts(['ab', 'cd'], 2, 'ab')).toEqual(['ab', '']);
    expect(tokenTexts(undefined, 3, 'xyz')).toEqual(['xyz', '', '']);
    expect(tokenTexts(['x', 'y', 'z'], 3, 'xyz')).toEqual(['x', 'y', 'z']);
  });

  test('OC-ADAPT-5010: a stop string ends the output as word, an OpenAI request\'s sampler values override the profile', async () => {
    const server = await replayServer({ ...BASICS, 'POST /v1/completions': { contentType: 'text/event-stream', body: fixture('completion-stop-string.sse.txt') } });
    const { summary } = await collect(
      adapterFor(server.url).complete({ ...REQUEST, maxTokens: 64, sampling: { temperature: 0, stop: ['e'] } }, new AbortController().signal),
    );
    expect(summary.stopReason).toBe('word');
    const sent = JSON.parse(server.requests.find((request) => request.path === '/v1/completions')?.body ?? '{}') as Record<string, unknown>;
    expect(sent).toMatchObject({ temperature: 0, stop: ['e'] });
    expect(mapVllmStopReason('stop', null)).toBe('eos');
    expect(mapVllmStopReason('stop', 4)).toBe('eos');
    expect(mapVllmStopReason('length', null)).toBe('limit');
    expect(mapVllmStopReason('abort', null)).toBe('none');
  });

  test('ORCH-3015 OC-ADAPT-5020: a chat is rendered by the server\'s template (/tokenize with messages) and completed from those token ids; counting gives the same ids\' length', async () => {
    const chat = fixture('tokenize-chat.json');
    const server = await replayServer({
      ...BASICS,
      'POST /tokenize': () => ({ body: chat }),
      'POST /v1/completions': { contentType: 'text/event-stream', body: fixture('completion-length.sse.txt') },
    });
    const adapter = adapterFor(server.url);
    const messages = [{ role: 'user' as const, content: 'Hi' }];
    await collect(adapter.complete({ ...REQUEST, prompt: { chat: messages } }, new AbortController().signal));
    const tokenized = JSON.parse(chat) as { tokens: number[]; count: number };
    const tokenizeBody = JSON.parse(server.requests.find((request) => request.path === '/tokenize')?.body ?? '{}') as Record<string, unknown>;
    expect(tokenizeBody).toEqual({ model: 'tiny', messages, add_generation_prompt: true, add_special_tokens: false });
    const sent = JSON.parse(server.requests.find((request) => request.path === '/v1/completions')?.body ?? '{}') as Record<string, unknown>;
    expect(sent['prompt']).toEqual(tokenized.tokens);
    expect(await adapter.countPromptTokens?.({ chat: messages })).toBe(tokenized.count);
  });

  test('ORCH-3015: a text prompt is counted as /v1/completions tokenizes it (the tokenizer\'s special tokens added)', async () => {
    const server = await replayServer({ ...BASICS, 'POST /tokenize': { body: fixture('tokenize-prompt.json') } });
    expect(await adapterFor(server.url).countPromptTokens?.('Hello world')).toBe((JSON.parse(fixture('tokenize-prompt.json')) as { count: number }).count);
    expect(JSON.parse(server.requests.at(-1)?.body ?? '{}')).toEqual({ model: 'tiny', prompt: 'Hello world', add_special_tokens: true });
  });

  test('OC-CTRL-2030: a prompt over max_model_len (HTTP 400) is INVALID_PARAMS; an error chunk mid-stream (the engine core died) and a stream cut short are WORKER_RESET', async () => {
    const [body, status] = fixture('completion-too-long.400.txt').trim().split('\n');
    const engineDied =
      'data: {"error": {"message": "EngineCore encountered an issue. See stack trace (above) for the root cause.", "type": "InternalServerError", "param": null, "code": 500}}\n\ndata: [DONE]\n\n';
    const cut = fixture('completion-length.sse.txt').split('\n\n').slice(0, 2).join('\n\n') + '\n\n';
    for (const [reply, code] of [
      [{ status: Number(status), body: body ?? '' }, 'INVALID_PARAMS'],
      [{ contentType: 'text/event-stream', body: engineDied }, 'WORKER_RESET'],
      [{ contentType: 'text/event-stream', body: cut }, 'WORKER_RESET'],
    ] as const) {
      const server = await replayServer({ ...BASICS, 'POST /v1/completions': reply });
      expect(await failureCode(collect(adapterFor(server.url).complete(REQUEST, new AbortController().signal)))).toBe(code);
    }
  });

  test('ORCH-3026: aborting mid-stream ends the generator with the abort and closes the connection (vLLM aborts the request when it closes)', async () => {
    const server = await replayServer({ ...BASICS, 'POST /v1/completions': { contentType: 'text/event-stream', body: fixture('completion-length.sse.txt'), pieceDelayMs: 200 } });
    const controller = new AbortController();
    const stream = adapterFor(server.url).complete(REQUEST, controller.signal);
    expect((await stream.next()).done).toBe(false);
    controller.abort();
    expect(await failureCode(stream.next())).toBe('AbortError');
    await sleep(50);
    expect(server.closedEarly).toContain('POST /v1/completions');
  });

  test('ORCH-3026 ORCH-3049: confirmStopped waits until the engine runs no more requests than the adapter still streams; past the deadline it is WORKER_RESET', async () => {
    const idle = fixture('metrics.txt');
    const busy = idle.replace(/^(vllm:num_requests_running\{[^}]*\}) \S+$/m, '$1 1.0');
    expect(busy).not.toBe(idle);
    let answers = 0;
    const server = await replayServer({ ...BASICS, 'GET /metrics': () => ({ body: ++answers < 4 ? busy : idle }) });
    const adapter = adapterFor(server.url);
    await adapter.confirmStopped(undefined, 5_000);
    expect(answers).toBe(4);
    const stuck = await replayServer({ ...BASICS, 'GET /metrics': { body: busy } });
    expect(await failureCode(adapterFor(stuck.url).confirmStopped(undefined, 100))).toBe('WORKER_RESET');
  });

  test('OC-ADAPT-5001: native metrics read vllm:generation_tokens_total; the load is vllm:kv_cache_usage_perc in per mille (the deprecated gpu_cache name as a fallback)', async () => {
    const text = fixture('metrics.txt');
    const server = await replayServer({ ...BASICS, 'GET /metrics': { body: text.replace(/^(vllm:kv_cache_usage_perc\{[^}]*\}) \S+$/m, '$1 0.25') } });
    const adapter = adapterFor(server.url);
    const scraped = await adapter.nativeMetrics?.scrape();
    const counter = /^vllm:generation_tokens_total\{[^}]*\} (\S+)$/m.exec(text)?.[1];
    expect(adapter.nativeMetrics?.generatedTokens(scraped ?? '')).toBe(Number(counter));
    expect(await adapter.readLoad?.()).toEqual({ kvUsedPermille: 250, inflightTokens: 0 });
    const old = await replayServer({ ...BASICS, 'GET /metrics': { body: 'vllm:gpu_cache_usage_perc{model_name="tiny"} 0.5\n' } });
    expect(await adapterFor(old.url).readLoad?.()).toEqual({ kvUsedPermille: 500, inflightTokens: 0 });
  });

  test('ORCH-3002: /health 200 is ready, 503 (engine dead) is live but not ready, no answer is not live', async () => {
    const server = await replayServer({ ...BASICS });
    expect(await adapterFor(server.url).health()).toEqual({ live: true, ready: true });
    const dead = await replayServer({ 'GET /health': { status: 503, body: '' } });
    expect(await adapterFor(dead.url).health()).toMatchObject({ live: true, ready: false });
    expect(await adapterFor('http://127.0.0.1:9').health()).toMatchObject({ live: false, ready: false });
  });
});
