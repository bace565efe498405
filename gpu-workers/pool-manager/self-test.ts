import { ErrorCode } from '../../core/errors';
import type { EngineAdapter, EngineProperties } from '../engines/engine-adapter';
import { ReplicaFailure } from './replica-failure';

/** What the pool was configured with; a field is absent where the runtime does not set it (an external engine). */
export interface SelfTestExpectations {
  readonly slots?: number | undefined;
  /** Context per slot the pool admits requests against. */
  readonly contextPerSlot?: number | undefined;
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

/**
 * ORCH-3049: before a replica is Ready, prove on the loaded engine that preload took (properties
 * match the config the pool admits against), a minimal decode works, a cancel stops the engine's work, and
 * telemetry is emitted (the engine's own metrics count the self-test's tokens, where it has native metrics).
 * The same steps for every engine; what differs is in the adapter.
 */
export async function runSelfTest(adapter: EngineAdapter, expected: SelfTestExpectations): Promise<SelfTestReport> {
  const started = Date.now();
  const properties = await adapter.properties().catch((error: unknown) => fail('preload', String(error)));
  if (expected.slots !== undefined && properties.totalSlots !== expected.slots) fail('preload', `engine has ${properties.totalSlots} slots, config says ${expected.slots}`);
  if (expected.contextPerSlot !== undefined && properties.contextSize !== expected.contextPerSlot) {
    throw new ReplicaFailure(
      ErrorCode.WORKER_RESET,
      'config_mismatch',
      `engine context per slot is ${properties.contextSize} tokens, the pool admits ${expected.contextPerSlot}`,
    );
  }

  const metrics = adapter.nativeMetrics;
  const generatedTokens = async (): Promise<number | undefined> => {
    if (!metrics) return undefined;
    const text = await metrics.scrape().catch((error: unknown) => fail('telemetry', String(error)));
    return metrics.generatedTokens(text);
  };
  const predictedBefore = (await generatedTokens()) ?? 0;
  // Pinned where the engine pins, so the cancel check watches the very slot the request ran on.
  const slotId = adapter.capabilities.slotPinning ? 0 : undefined;

  let decodedTokens = 0;
  try {
    const stream = adapter.complete({ prompt: PROMPT, maxTokens: 2, seed: 1, samplerProfile: 'v1', slotId }, new AbortController().signal);
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
    const stream = adapter.complete({ prompt: PROMPT, maxTokens: CANCEL_MAX_TOKENS, seed: 2, samplerProfile: 'v1', slotId }, controller.signal);
    await stream.next();
    controller.abort();
    await stream.next().catch(() => undefined);
    await adapter.confirmStopped(slotId, SLOT_FREE_TIMEOUT_MS);
  } catch (error) {
    fail('cancel', error instanceof Error ? error.message : String(error));
  }

  if (metrics) {
    const predictedAfter = await generatedTokens();
    if (predictedAfter === undefined || predictedAfter < predictedBefore + decodedTokens) {
      fail('telemetry', `the engine's generated-token counter did not count the decode (${predictedBefore} → ${String(predictedAfter)})`);
    }
  }
  return { properties, decodedTokens, durationMs: Date.now() - started };
}
