import pino from 'pino';
import { createLlamaCppAdapter, type LlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { startMockEngine, type MockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { EngineLoadSampler, type EngineLoad } from '../../gpu-workers/pool-manager/engine-load-sampler';
import { engineLoadOf } from '../../gpu-workers/engines/llamacpp/slot-load';
import { ReplicaStateMachine } from '../../gpu-workers/pool-manager/replica-state';
import { waitFor } from '../support/sse-client';

/**
 * Issue 13 (policies see real load): a replica reads its engine's slots and publishes the KV they hold and
 * the tokens of the tasks running, so admission and placement policies see more than a zero.
 */
describe('issue 13: engine load from the engine\'s own slots', () => {
  test('KV used is what every slot holds over their context (idle slots keep their last task\'s KV); in flight is what running slots hold', () => {
    const load = engineLoadOf([
      { id: 0, isProcessing: true, contextTokens: 1000, heldTokens: 300 },
      { id: 1, isProcessing: false, contextTokens: 1000, heldTokens: 200 },
      { id: 2, isProcessing: true, contextTokens: 1000, heldTokens: 0 },
    ]);
    expect(load).toEqual({ kvUsedPermille: 167, inflightTokens: 300 });
  });

  test('an engine that does not report what its slots hold gives unknown (null) figures, not zeros', () => {
    expect(engineLoadOf([{ id: 0, isProcessing: true, contextTokens: 10 }])).toEqual({ kvUsedPermille: null, inflightTokens: null });
    expect(engineLoadOf([])).toEqual({ kvUsedPermille: null, inflightTokens: null });
    // llama-server lists n_prompt_tokens only for slots that have run a task: the others hold nothing.
    expect(engineLoadOf([{ id: 0, isProcessing: true, contextTokens: 100, heldTokens: 50 }, { id: 1, isProcessing: false, contextTokens: 100 }])).toEqual({ kvUsedPermille: 250, inflightTokens: 50 });
    // Held tokens without a context size: in-flight tokens are known, the ratio is not.
    expect(engineLoadOf([{ id: 0, isProcessing: true, heldTokens: 5 }])).toEqual({ kvUsedPermille: null, inflightTokens: 5 });
  });

  describe('against the mock engine (llama-server\'s GET /slots shape)', () => {
    let engine: MockEngine;
    let adapter: LlamaCppAdapter;
    beforeAll(async () => {
      engine = await startMockEngine({ slots: 2, contextSize: 512, ttftMs: 1, interTokenMs: 20 });
      adapter = createLlamaCppAdapter({ baseUrl: engine.url });
    });
    afterAll(async () => {
      await adapter.close();
      await engine.close();
    });

    test('while a task decodes the sampler reports its prompt and output so far; after it, the slot\'s KV stays counted and nothing is in flight', async () => {
      const machine = new ReplicaStateMachine({ poolId: 'p', replicaId: 'p-r0', host: 'h', mockEngine: true, engine: 'llamacpp', modelRef: 'm', quant: null, ctx: 512, samplerProfileVersion: 'v1' });
      const published: EngineLoad[] = [];
      machine.onLoadChange((status) => published.push({ kvUsedPermille: status.kv_used_permille ?? null, inflightTokens: status.inflight_tokens ?? null }));
      const sampler = new EngineLoadSampler((signal) => adapter.readLoad?.(signal) ?? Promise.reject(new Error('no load reading')), 20, (load) => machine.setEngineLoad(load), pino({ level: 'silent' }));
      sampler.start();
      try {
        const abort = new AbortController();
        // 5 words and BOS: 6 prompt tokens.
        const stream = adapter.complete({ prompt: 'one two three four five', maxTokens: 40, seed: 1, samplerProfile: 'v1' }, abort.signal);
        let step = await stream.next();
        await waitFor(() => (machine.status.inflight_tokens ?? 0) > 6, 10_000, 'in-flight tokens past the prompt');
        expect(machine.status.kv_used_permille).toBeGreaterThan(0);
        while (!step.done) step = await stream.next();
        await waitFor(() => machine.status.inflight_tokens === 0, 10_000, 'nothing in flight');
        // The idle slot still holds the 46 tokens: 46 / (2 × 512) ≈ 45‰.
        expect(machine.status.kv_used_permille).toBe(45);
        // Only changes are published.
        expect(published.every((load, index) => index === 0 || JSON.stringify(load) !== JSON.stringify(published[index - 1]))).toBe(true);
      } finally {
        sampler.stop();
      }
    });
  });
});
