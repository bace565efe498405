import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { median, percentile } from '../bench/stats';
import { CHAOS_ENGINE_RESTART, ChaosStack } from './chaos-stack';
import { alive, descendantsOf } from './process-table';
import { readResumingStream, type StreamRecord } from './resuming-stream';

/**
 * What gets killed: the embedded Temporal server, a pool worker, a gateway process or the workflow worker
 * (npm start restarts them), the pool's llama-server (its pool worker restarts it), or npm start itself
 * (the outer supervisor, here this run, restarts it).
 */
export type KillKind = 'temporal' | 'main' | 'pool-worker' | 'engine' | 'gateway' | 'workflow-worker';
export const KILL_KINDS: readonly KillKind[] = ['temporal', 'pool-worker', 'engine', 'gateway', 'workflow-worker', 'main'];

/** Gateways and the workflow worker can only be killed alone where they run in processes of their own. */
const SPLIT_LAYOUT_KINDS: readonly KillKind[] = ['gateway', 'workflow-worker'];

export interface ChaosOptions {
  readonly kinds: readonly KillKind[];
  readonly engine: 'mock' | 'llama';
  readonly killsPerKind: number;
  readonly clients: number;
  readonly tokens: number;
  readonly interTokenMs: number;
  readonly slots: number;
  /** Every task in flight at a kill must end within this (issue 15's target: 60 s). */
  readonly recoveryBoundMs: number;
  readonly log: (line: string) => void;
}

interface TaskRun {
  readonly combo: number;
  readonly acceptedAt: number;
  record?: StreamRecord;
}

export interface KindFigures {
  readonly kind: KillKind;
  readonly kills: number;
  readonly accepted: number;
  readonly ended: number;
  readonly endedWithError: Readonly<Record<string, number>>;
  readonly lost: number;
  readonly duplicatedTokens: number;
  readonly outOfOrderTokens: number;
  readonly wrongStreams: number;
  readonly streamsInterrupted: number;
  readonly streamsResumed: number;
  /** Resumed streams that went on receiving tokens as they were decoded (not only the result at the end). */
  readonly streamsResumedLive: number;
  /** Kill → the last task in flight at the kill reached its terminal frame, per kill. */
  readonly recoveryMs: readonly number[];
  /** Kill → the killed piece serves again (Temporal restarted by npm start; npm start restarted and its pool Ready). */
  readonly backMs: readonly number[];
  /** main only: processes of the stack still alive 10 s after npm start was SIGKILLed, summed over kills. */
  readonly leftoversAfterKill: number;
  /** main only: the slowest time for every child of the killed npm start to end. */
  readonly childrenGoneMs: readonly number[];
}

export interface ChaosReport {
  readonly kinds: readonly KindFigures[];
  readonly referenceTasks: number;
  readonly finalStop: { readonly code: number | null; readonly ms: number; readonly leftovers: number };
}

const PROMPTS = ['The quick brown fox', 'Once upon a time', 'In a hole in the ground', 'It was a bright cold day', 'Call me Ishmael', 'All happy families', 'Far out in the uncharted', 'It is a truth'];

/**
 * Steady streaming load on `npm start`'s default stack while its pieces are SIGKILLed in turn; every task
 * is checked against a clean run of the same (prompt, seed). Issue 15 (Temporal server, main process)
 * and the start of issue 13's chaos suite.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  if (options.kinds.includes('engine') && options.engine !== 'llama') throw new Error('killing the engine needs a real one: CHAOS_ENGINE=llama (the mock runs inside the pool worker)');
  const single = options.kinds.filter((kind) => !SPLIT_LAYOUT_KINDS.includes(kind));
  const split = options.kinds.filter((kind) => SPLIT_LAYOUT_KINDS.includes(kind));
  const figures: KindFigures[] = [];
  let finalStop: ChaosReport['finalStop'] = { code: 0, ms: 0, leftovers: 0 };
  let referenceTasks = 0;
  for (const [layout, kinds] of [['single', single], ['split', split]] as const) {
    if (kinds.length === 0) continue;
    const run = await runOnStack(layout, kinds, options);
    figures.push(...run.kinds);
    referenceTasks = run.referenceTasks;
    // The worse of the two stops.
    if (run.finalStop.code !== 0 || run.finalStop.leftovers > 0 || finalStop.code === 0) finalStop = run.finalStop;
  }
  return { kinds: figures, referenceTasks, finalStop };
}

/** A stream must outlive a reconnect and a take-over to be seen going on live: 150 tokens at 20 ms is 3 s. */
const SPLIT_LAYOUT_MIN_TOKENS = 150;

async function runOnStack(layout: 'single' | 'split', kinds: readonly KillKind[], runOptions: ChaosOptions): Promise<ChaosReport> {
  const options = layout === 'split' ? { ...runOptions, tokens: Math.max(runOptions.tokens, SPLIT_LAYOUT_MIN_TOKENS) } : runOptions;
  const stack = await ChaosStack.create({ engine: options.engine, slots: options.slots, interTokenMs: options.interTokenMs, layout });
  const dispatcher = new Agent({ connections: options.clients * 4, keepAliveTimeout: 1_000 });
  try {
    await stack.start();
    options.log(`${layout} stack up at ${stack.apiUrl}; reference run of ${PROMPTS.length} (prompt, seed) pairs`);
    const reference = await Promise.all(PROMPTS.map(async (_prompt, combo) => (await runTask(stack, dispatcher, combo, options)).record?.tokens.join('') ?? ''));
    const figures: KindFigures[] = [];
    for (const kind of kinds) figures.push(await killInTurn(kind, stack, dispatcher, reference, options));
    const finalStop = await stack.stop();
    await sleep(1_000);
    return { kinds: figures, referenceTasks: reference.length, finalStop: { ...finalStop, leftovers: stack.leftovers().length } };
  } finally {
    await stack.stop();
    await dispatcher.close();
    stack.remove();
  }
}

async function killInTurn(kind: KillKind, stack: ChaosStack, dispatcher: Agent, reference: readonly string[], options: ChaosOptions): Promise<KindFigures> {
  const runs: TaskRun[] = [];
  let loading = true;
  const clients = Array.from({ length: options.clients }, async (_unused, client) => {
    for (let round = 0; loading; round += 1) {
      const run = await runTask(stack, dispatcher, (client + round) % PROMPTS.length, options, runs);
      if (run.record === undefined) await sleep(200);
    }
  });
  const recoveryMs: number[] = [];
  const backMs: number[] = [];
  const childrenGoneMs: number[] = [];
  let leftoversAfterKill = 0;
  for (let kill = 1; kill <= options.killsPerKind; kill += 1) {
    // An engine killed again within the breaker window is a crash storm by design (restart-policy.ts).
    await sleep(kind === 'engine' ? CHAOS_ENGINE_RESTART.breaker_window_ms + 1_000 : 1_500);
    const inFlight = runs.filter((run) => run.record === undefined);
    const killedAt = performance.now();
    if (kind === 'temporal' || kind === 'pool-worker' || kind === 'gateway' || kind === 'workflow-worker') {
      // Gateways in turn: each admitted about half of the streams (the primary hands connections round-robin).
      const candidates = (await stack.processes()).filter((entry) => entry.role === kind && entry.state === 'running');
      const victim = candidates[kill % Math.max(1, candidates.length)];
      if (!victim?.pid) throw new Error(`no running ${kind} on /health`);
      process.kill(victim.pid, 'SIGKILL');
      let seen = '';
      const isBack = async (): Promise<boolean> => {
        const entry = (await stack.processes()).find((candidate) => candidate.name === victim.name);
        const poolReady = await stack.poolReady();
        seen = `${victim.name} ${entry?.state ?? 'absent'} pid ${String(entry?.pid)} (was ${victim.pid}), pool ready ${String(poolReady)}`;
        return entry?.state === 'running' && entry.pid !== victim.pid && poolReady;
      };
      await waitUntilAsync(isBack, killedAt + options.recoveryBoundMs, () => `${kind} to serve again; last seen: ${seen}`);
      backMs.push(performance.now() - killedAt);
    } else if (kind === 'engine') {
      const engine = await stack.enginePid();
      if (engine === undefined) throw new Error('no llama-server under the pool worker');
      process.kill(engine, 'SIGKILL');
      const isBack = async (): Promise<boolean> => {
        const current = await stack.enginePid();
        return current !== undefined && current !== engine && (await stack.poolReady());
      };
      await waitUntilAsync(isBack, killedAt + options.recoveryBoundMs, 'llama-server to serve again');
      backMs.push(performance.now() - killedAt);
    } else {
      const children = descendantsOf(stack.mainPid());
      process.kill(stack.mainPid(), 'SIGKILL');
      while (children.some(alive) && performance.now() - killedAt < 10_000) await sleep(50);
      childrenGoneMs.push(performance.now() - killedAt);
      leftoversAfterKill += children.filter(alive).length;
      await stack.start();
      backMs.push(performance.now() - killedAt);
    }
    await waitUntil(() => inFlight.every((run) => run.record !== undefined), options.recoveryBoundMs - (performance.now() - killedAt));
    const ended = inFlight.map((run) => run.record?.endedAt ?? Number.NaN);
    recoveryMs.push(inFlight.length === 0 ? 0 : Math.max(...ended.map((at) => at - killedAt)));
    options.log(`${kind} kill ${kill}/${options.killsPerKind}: ${inFlight.length} tasks in flight; back in ${Math.round(backMs.at(-1) ?? 0)} ms; all of them ended ${Math.round(recoveryMs.at(-1) ?? Number.NaN)} ms after the kill`);
  }
  loading = false;
  await Promise.all(clients);
  return summarize(kind, runs, reference, { recoveryMs, backMs, childrenGoneMs, leftoversAfterKill, kills: options.killsPerKind });
}

/** One client's task: submit (again with the same task_id while the gateway is away), then read its stream to the end. */
async function runTask(stack: ChaosStack, dispatcher: Agent, combo: number, options: ChaosOptions, runs?: TaskRun[]): Promise<TaskRun> {
  const taskId = randomUUID();
  const body = JSON.stringify({
    task_id: taskId,
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: stack.model,
    engine: 'llamacpp',
    ctx: 1024,
    priority: 'interactive',
    prompt: PROMPTS[combo],
    seed: 1_000 + combo,
    max_tokens: options.tokens,
    deadline_ms: 120_000,
  });
  const deadline = performance.now() + options.recoveryBoundMs;
  while (performance.now() < deadline) {
    try {
      const response = await request(`${stack.apiUrl}/v1/tasks`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body });
      await response.body.dump();
      if (response.statusCode === 202) break;
      if (response.statusCode === 429) return { combo, acceptedAt: Number.NaN };
    } catch {
      // The gateway is down (main killed): a resubmit of the same task_id is idempotent (ORCH-3024).
    }
    await sleep(200);
  }
  const run: TaskRun = { combo, acceptedAt: performance.now() };
  runs?.push(run);
  run.record = await readResumingStream(stack.apiUrl, taskId, run.acceptedAt + options.recoveryBoundMs + 30_000);
  return run;
}

function summarize(
  kind: KillKind,
  runs: readonly TaskRun[],
  reference: readonly string[],
  measured: Pick<KindFigures, 'recoveryMs' | 'backMs' | 'childrenGoneMs' | 'leftoversAfterKill' | 'kills'>,
): KindFigures {
  const records = runs.map((run) => ({ run, record: run.record }));
  const endedWithError: Record<string, number> = {};
  for (const { record } of records) if (record?.outcome === 'error') endedWithError[record.errorCode ?? '?'] = (endedWithError[record.errorCode ?? '?'] ?? 0) + 1;
  return {
    kind,
    accepted: runs.length,
    ended: records.filter(({ record }) => record?.outcome === 'end').length,
    endedWithError,
    lost: records.filter(({ record }) => record === undefined || record.outcome === 'lost').length,
    duplicatedTokens: records.reduce((sum, { record }) => sum + (record?.duplicates ?? 0), 0),
    outOfOrderTokens: records.reduce((sum, { record }) => sum + (record?.outOfOrder ?? 0), 0),
    wrongStreams: records.filter(({ run, record }) => record?.outcome === 'end' && record.tokens.join('') !== reference[run.combo]).length,
    streamsInterrupted: records.filter(({ record }) => (record?.reconnects ?? 0) > 0).length,
    streamsResumed: records.filter(({ record }) => (record?.reconnects ?? 0) > 0 && record?.outcome === 'end').length,
    streamsResumedLive: records.filter(({ record }) => record?.liveAfterResume === true && record.outcome === 'end').length,
    ...measured,
  };
}

/** Polls until `condition` holds; past `deadline` the run stops with what did not come back. */
async function waitUntilAsync(condition: () => Promise<boolean>, deadline: number, what: string | (() => string)): Promise<void> {
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`chaos: waited too long for ${typeof what === 'string' ? what : what()}`);
    await sleep(50);
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + Math.max(0, timeoutMs);
  while (!condition() && performance.now() < deadline) await sleep(50);
}

/** Zero lost, duplicated, out-of-order or wrong; every stream resumed; recovery within the bound; nothing left over. */
export function chaosTargetsMet(report: ChaosReport, recoveryBoundMs: number): string[] {
  const misses: string[] = [];
  for (const figures of report.kinds) {
    const where = `${figures.kind} kills`;
    if (figures.lost > 0) misses.push(`${where}: ${figures.lost} tasks lost`);
    if (Object.keys(figures.endedWithError).length > 0) misses.push(`${where}: tasks ended with errors ${JSON.stringify(figures.endedWithError)}`);
    if (figures.duplicatedTokens + figures.outOfOrderTokens > 0) misses.push(`${where}: ${figures.duplicatedTokens} duplicated and ${figures.outOfOrderTokens} out-of-order tokens`);
    if (figures.wrongStreams > 0) misses.push(`${where}: ${figures.wrongStreams} streams differ from the clean run`);
    if (figures.streamsResumed < figures.streamsInterrupted) misses.push(`${where}: ${figures.streamsInterrupted - figures.streamsResumed} interrupted streams did not resume`);
    // Issue 13: a live stream survives the death of its gateway (a stream whose task ended meanwhile can only get the result).
    if (figures.kind === 'gateway' && figures.streamsInterrupted > 0 && figures.streamsResumedLive === 0) misses.push(`${where}: no interrupted stream went on live on another gateway`);
    if (figures.recoveryMs.some((ms) => !(ms <= recoveryBoundMs))) misses.push(`${where}: tasks in flight did not all end within ${recoveryBoundMs} ms of a kill`);
    if (figures.leftoversAfterKill > 0) misses.push(`${where}: ${figures.leftoversAfterKill} processes outlived npm start by 10 s`);
  }
  if (report.finalStop.leftovers > 0) misses.push(`${report.finalStop.leftovers} processes left after the final stop`);
  if (report.finalStop.code !== 0) misses.push(`the final stop exited ${String(report.finalStop.code)}`);
  return misses;
}

export function formatReport(report: ChaosReport): string {
  const ms = (samples: readonly number[]): string => (samples.length === 0 ? '–' : `${Math.round(median(samples))} / ${Math.round(percentile(samples, 1))}`);
  const rows = report.kinds.map((figures) =>
    [
      figures.kind,
      figures.kills,
      figures.accepted,
      figures.ended,
      Object.entries(figures.endedWithError).map(([code, count]) => `${code}×${count}`).join(' ') || '0',
      figures.lost,
      `${figures.duplicatedTokens} / ${figures.outOfOrderTokens} / ${figures.wrongStreams}`,
      `${figures.streamsResumed}/${figures.streamsInterrupted} (${figures.streamsResumedLive} live)`,
      ms(figures.backMs),
      ms(figures.recoveryMs),
      figures.kind === 'main' ? `${figures.leftoversAfterKill} (gone in ${ms(figures.childrenGoneMs)} ms)` : '–',
    ].join(' | '),
  );
  return [
    '| killed | kills | tasks accepted | ended | ended with error | lost | dup / out-of-order tokens / wrong streams | streams resumed / interrupted (went on live) | back serving ms (median / max) | in-flight tasks all ended, ms after kill (median / max) | left running 10 s after kill |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
    '',
    `final SIGTERM: exit ${String(report.finalStop.code)} in ${Math.round(report.finalStop.ms)} ms, ${report.finalStop.leftovers} processes left`,
  ].join('\n');
}
