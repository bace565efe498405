import { ErrorCode } from '../../core/errors';
import type { EngineAdapterV1, EngineProperties } from '../engines/engine-adapter';
import { ReplicaFailure } from './replica-failure';

export interface SelfTestExpectations {
  readonly slots: number;
  /** Context per slot the pool admits requests against. */
  readonly contextPerSlot: number;
}

export interface SelfTestReport {
  readonly properties: EngineProperties;
  readonly decodedTokens: number;
  readonly durationMs: number;
}

const PROMPT = 'Self-test:';
/** Long enough that the cancel lands mid-generation, short enough to be cheap if it does not. */
const CANCEL_MAX_TOKENS = 64;
const SLOT_FREE_TIMEOUT_MS = 5_000;

function fail(step: string, detail: string): never {
  throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'self_test_failed', `start-up self-test failed at ${step}: ${detail}`);
}

/** The value of a Prometheus counter line such as `llamacpp:tokens_predicted_total 12`. */
function counter(text: string, name: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * ORCH-3049: before a replica is Ready, prove on the loaded engine that preload took (properties
 * match the config the pool admits against), a minimal decode works, a cancel frees the slot, and
 * telemetry is emitted (the engine's metrics count the self-test's own tokens).
 */
export async function runSelfTest(adapter: EngineAdapterV1, expected: SelfTestExpectations): Promise<SelfTestReport> {
  const started = Date.now();
  const properties = await adapter.properties().catch((error: unknown) => fail('preload', String(error)));
  if (properties.totalSlots !== expected.slots) fail('preload', `engine has ${properties.totalSlots} slots, config says ${expected.slots}`);
  if (properties.contextSize !== expected.contextPerSlot) {
    throw new ReplicaFailure(
      ErrorCode.WORKER_RESET,
      'config_mismatch',
      `engine context per slot is ${properties.contextSize} tokens, the pool admits ${expected.contextPerSlot}`,
    );
  }

  const metricsBefore = await adapter.scrapeMetrics().catch((error: unknown) => fail('telemetry', String(error)));
  const predictedBefore = counter(metricsBefore, 'llamacpp:tokens_predicted_total') ?? 0;

  let decodedTokens = 0;
  try {
    const stream = adapter.complete({ prompt: PROMPT, maxTokens: 2, seed: 1, samplerProfile: 'v1', slotId: 0 }, new AbortController().signal);
    for (;;) {
      const next = await stream.next();
      if (next.done === true) {
        decodedTokens = next.value.tokensOut;
        break;
      }
    }
  } catch (error) {
    fail('minimal decode', error instanceof Error ? error.message : String(error));
  }
  if (decodedTokens < 1) fail('minimal decode', 'no token decoded');

  const controller = new AbortController();
  try {
    const stream = adapter.complete({ prompt: PROMPT, maxTokens: CANCEL_MAX_TOKENS, seed: 2, samplerProfile: 'v1', slotId: 0 }, controller.signal);
    await stream.next();
    controller.abort();
    await stream.next().catch(() => undefined);
    await adapter.confirmSlotFree(0, SLOT_FREE_TIMEOUT_MS);
  } catch (error) {
    fail('cancel', error instanceof Error ? error.message : String(error));
  }

  const metricsAfter = await adapter.scrapeMetrics().catch((error: unknown) => fail('telemetry', String(error)));
  const predictedAfter = counter(metricsAfter, 'llamacpp:tokens_predicted_total');
  if (predictedAfter === undefined || predictedAfter < predictedBefore + decodedTokens) {
    fail('telemetry', `llamacpp:tokens_predicted_total did not count the decode (${predictedBefore} → ${String(predictedAfter)})`);
  }
  return { properties, decodedTokens, durationMs: Date.now() - started };
}
