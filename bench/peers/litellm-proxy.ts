import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { cacheDir } from '../../cli/cache-dir';
import { freePort } from '../../cli/free-port';
import { ensurePythonVenv } from '../../cli/python-venv';
import { terminateChild } from '../../platform/child-process';
import { timeSseTokens, type StreamTiming } from '../sse-timing';

/**
 * The LiteLLM proxy (PyPI `litellm[proxy]`) as a third benchmark column: engine direct, through
 * llama-orch, through LiteLLM — all in front of the same engine (issue 10 item 5).
 *
 * Pinned below 1.107.0, the release that was compromised (and pulled from PyPI): 1.106.12 is the newest
 * release before it, and installs here with its proxy extras (Python 3.11). Never float this pin.
 */
export const LITELLM_VERSION = '1.106.12';

/**
 * `openai/<name>` on LiteLLM's /v1/chat/completions: the OpenAI SDK's chat stream to the engine's
 * /v1/chat/completions, one chunk out per chunk in. LiteLLM's text-completion path (/v1/completions,
 * where `openai/` turns into `text-completion-openai/`, and `hosted_vllm/` lands too) runs the call
 * through a thread-pool hop and a chat→text conversion: measured on the mock (20 ms TTFT, 1 worker,
 * concurrency 1) it added ~35 ms to TTFT p50 where chat added ~14 ms; `hosted_vllm/` chat timed the
 * same as `openai/` chat, but llama-server is no vLLM.
 */
export const LITELLM_PROVIDER_PREFIX = 'openai/';

/**
 * One uvicorn worker per core, LiteLLM's own guidance; on the 2-core box that is 2. Measured there with
 * the mock engine on the same cores, concurrency 32, 64 tokens: 1 worker gave TTFT p50 368 ms and
 * 103 tok/s (one Python process saturated), 2 gave 239 ms and 184 tok/s, 3 gave 223 ms but 161 tok/s
 * and a worse p99 (oversubscribed).
 */
export function defaultLiteLlmWorkers(): number {
  return Math.max(1, availableParallelism());
}

const defaultProgress = (message: string): void => {
  process.stderr.write(`[llama-orch] ${message}\n`);
};

/** `~/.cache/llama-orch/litellm/<version>/`: the venv, and a marker written once the install finished. */
function liteLlmHome(): string {
  return join(cacheDir(), 'litellm', LITELLM_VERSION);
}

/**
 * Finds or installs `litellm[proxy]==LITELLM_VERSION` in a venv in the cache, as cli/schemathesis.ts
 * does: one time, pip's progress on stderr (stdout stays the benchmark's), reused afterwards. Resolves
 * with the `litellm` CLI's path.
 */
export async function ensureLiteLlm(progress: (message: string) => void = defaultProgress): Promise<string> {
  const home = liteLlmHome();
  const venv = await ensurePythonVenv({ venv: join(home, 'venv'), marker: join(home, '.installed'), requirement: `litellm[proxy]==${LITELLM_VERSION}`, progress, pipOutputToStderr: true });
  return join(venv, 'bin', 'litellm');
}

export interface LiteLlmProxyOptions {
  /** The engine's root URL (llama-server or the mock); LiteLLM calls `${engineBaseUrl}/v1/chat/completions`. */
  readonly engineBaseUrl: string;
  /** Default: a free loopback port. */
  readonly port?: number | undefined;
  /** uvicorn workers. Default: defaultLiteLlmWorkers(). */
  readonly workers?: number | undefined;
  /** The model name clients ask LiteLLM for (and LiteLLM asks the engine for). Default 'llama-orch-bench'. */
  readonly model?: string | undefined;
  /** How long to wait for every worker to start. Default 180 s (imports take ~15 s per worker on 2 cores). */
  readonly startTimeoutMs?: number | undefined;
}

export interface LiteLlmProxy {
  readonly url: string;
  readonly model: string;
  /** The proxy's master key, sent as a bearer token (LiteLLM refuses to start without one). */
  readonly apiKey: string;
  /** Its stdout and stderr, kept for inspection until stop(). */
  readonly logFile: string;
  stop(): Promise<void>;
}

/** One master key per process: startLiteLlmProxy configures it, runViaLiteLlm sends it by default. */
const PROCESS_MASTER_KEY = `sk-${randomBytes(24).toString('hex')}`;

/**
 * The proxy's environment, built from nothing rather than inherited: no DATABASE_URL (no proxy DB), no
 * Redis, no HTTP(S)_PROXY, no provider keys. Each switch below turns one outside fetch into a local
 * read; with them a run connects to 127.0.0.1 only (checked under strace, connect(2) on every process).
 */
function proxyEnvironment(workDir: string, masterKey: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: workDir,
    TMPDIR: workDir,
    LANG: 'C.UTF-8',
    PYTHONUNBUFFERED: '1',
    // PRODUCTION: no python-dotenv, so no .env from the working directory is loaded.
    LITELLM_MODE: 'PRODUCTION',
    LITELLM_MASTER_KEY: masterKey,
    // Telemetry: this release has none left (`--telemetry` is a no-op); set anyway for older habits.
    LITELLM_TELEMETRY: 'False',
    // The model cost map, blog posts, policy templates, router presets and Anthropic beta headers
    // otherwise come from GitHub at start-up; the package ships copies of each.
    LITELLM_LOCAL_MODEL_COST_MAP: 'True',
    LITELLM_LOCAL_BLOG_POSTS: 'True',
    LITELLM_LOCAL_POLICY_TEMPLATES: 'True',
    LITELLM_LOCAL_AUTOROUTER_PRESETS: 'True',
    LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS: 'True',
    // No admin UI, no API docs pages: nothing to serve or fetch for them.
    DISABLE_ADMIN_UI: 'True',
    NO_DOCS: 'True',
    NO_REDOC: 'True',
  };
}

function configYaml(model: string, engineBaseUrl: string): string {
  // JSON is YAML: no YAML writer needed, and every string is quoted.
  const config = {
    model_list: [
      {
        model_name: model,
        litellm_params: {
          model: `${LITELLM_PROVIDER_PREFIX}${model}`,
          api_base: `${engineBaseUrl.replace(/\/+$/, '')}/v1`,
          // The engine checks no key; the OpenAI SDK insists on one.
          api_key: 'none',
        },
      },
    ],
    litellm_settings: { telemetry: false, drop_params: true, set_verbose: false },
    general_settings: {},
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Every uvicorn worker logs this once its app is up; /health/liveliness answers after the first. */
function workersStarted(logFile: string): number {
  try {
    return readFileSync(logFile, 'utf8').split('Application startup complete.').length - 1;
  } catch {
    return 0;
  }
}

async function answersLiveliness(url: string): Promise<boolean> {
  try {
    const response = await request(`${url}/health/liveliness`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * Starts `litellm --config …` bound to 127.0.0.1, routing one model name to the engine's
 * OpenAI-compatible /v1, and resolves once every worker is up and /health/liveliness answers.
 */
export async function startLiteLlmProxy(options: LiteLlmProxyOptions): Promise<LiteLlmProxy> {
  const binary = await ensureLiteLlm();
  const model = options.model ?? 'llama-orch-bench';
  const workers = options.workers ?? defaultLiteLlmWorkers();
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-litellm-'));
  const configFile = join(workDir, 'config.yaml');
  const logFile = join(workDir, 'litellm.log');
  writeFileSync(configFile, configYaml(model, options.engineBaseUrl));
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, ['--config', configFile, '--host', '127.0.0.1', '--port', String(port), '--num_workers', String(workers)], {
      cwd: workDir,
      env: proxyEnvironment(workDir, PROCESS_MASTER_KEY),
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log); // the child holds its own descriptor
  }
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${code ?? signal}`;
  });
  child.once('error', (error) => {
    exited = `failed to start: ${error.message}`;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= terminateChild(child, 10_000).then(() => rmSync(workDir, { recursive: true, force: true }));
    return stopping;
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 180_000);
  for (;;) {
    if (exited !== undefined) {
      const logTail = tail(logFile);
      rmSync(workDir, { recursive: true, force: true });
      throw new Error(`LiteLLM proxy ${exited} before it was ready:\n${logTail}`);
    }
    if (workersStarted(logFile) >= workers && (await answersLiveliness(url))) break;
    if (Date.now() > deadline) {
      const logTail = tail(logFile);
      await stop();
      throw new Error(`LiteLLM proxy not ready at ${url} within ${options.startTimeoutMs ?? 180_000} ms:\n${logTail}`);
    }
    await sleep(250);
  }
  return { url, model, apiKey: PROCESS_MASTER_KEY, logFile, stop };
}

/**
 * A streamed chat chunk carries a token when its delta has content: not the role-only first delta, the
 * finish chunk, the usage chunk or [DONE].
 */
function isContentToken(_event: string | undefined, data: string): boolean {
  const payload = data.trim();
  if (!payload.startsWith('{')) return false;
  const chunk = JSON.parse(payload) as { choices?: { delta?: { content?: unknown } }[] };
  const content = chunk.choices?.[0]?.delta?.content;
  return typeof content === 'string' && content.length > 0;
}

/**
 * One streamed chat completion through the proxy, timed like bench/ttft-throughput.ts's runDirect: the
 * same prompt (as the one user message), seed and token count; TTFT from the request's start to the
 * first chunk with content. The engine sees the prompt through its chat template, a few tokens more.
 */
export async function runViaLiteLlm(
  dispatcher: Dispatcher,
  url: string,
  model: string,
  seed: number,
  maxTokens: number,
  apiKey: string = PROCESS_MASTER_KEY,
): Promise<StreamTiming> {
  const startedAt = performance.now();
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Benchmark prompt' }], max_tokens: maxTokens, stream: true, seed }),
  });
  if (response.statusCode !== 200) throw new Error(`LiteLLM answered ${response.statusCode}: ${await response.body.text()}`);
  return timeSseTokens(response.body, startedAt, isContentToken);
}
