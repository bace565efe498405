import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGguf } from '../../gpu-workers/models/gguf-writer';
import { describeQuant, quantFromName } from '../../gpu-workers/models/model-quant';
import { describeTensorSplit } from '../../core/tensor-split';
import { ReplicaEventCounters } from '../../gpu-workers/pool-manager/replica-events';

const directory = mkdtempSync(join(tmpdir(), 'llama-orch-quant-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('ORCH-3027 OC-CORE-1040: the replica facts a pool worker\'s job lines carry', () => {
  test('ORCH-3027: quant is the pool\'s declared one first, then the GGUF file type, then a tag in the model name, else null', async () => {
    const path = join(directory, 'model.gguf');
    await writeGguf(path, { metadata: new Map([['general.file_type', { type: 'uint32', value: 15 }]]), tensors: [] });
    expect(describeQuant('Q8_0', path)).toBe('Q8_0');
    expect(describeQuant(undefined, path)).toBe('Q4_K_M');
    expect(describeQuant(null, '/models/SmolLM2-135M-Instruct-q4_1.gguf')).toBe('Q4_1');
    expect(describeQuant(null, '/models/mock-llamacpp-tiny.gguf')).toBeNull();
    expect(describeQuant(null, undefined)).toBeNull();
    expect(quantFromName('llama-3-8b.IQ3_XXS.gguf')).toBe('IQ3_XXS');
    expect(quantFromName('mock:t-1234abcd')).toBeNull();
  });

  test('ORCH-3027 ORCH-3012: tensor_split is the configured ratios the engine splits by, null when none are configured or on one device (never made up)', () => {
    expect(describeTensorSplit([0, 1], [0.67, 0.33])).toBe('0.67,0.33');
    expect(describeTensorSplit([0, 1, 2], null)).toBeNull();
    expect(describeTensorSplit([0, 1], undefined)).toBeNull();
    expect(describeTensorSplit([0], undefined)).toBeNull();
    expect(describeTensorSplit([0], [1])).toBeNull();
  });

  test('ORCH-3027 ORCH-3053: OOM, driver-reset and ECC counters count the supervisor\'s crash classes apart; other failures count nowhere', () => {
    const counters = new ReplicaEventCounters();
    expect(counters.snapshot()).toEqual({ eviction_events: 0, oom_events: 0, driver_reset_events: 0, ecc_events: 0 });
    for (const kind of ['vram_oom', 'host_oom', 'driver_reset', 'ecc_error', 'ecc_error', 'engine_exit', 'untrusted_artifact'] as const) counters.record(kind);
    expect(counters.snapshot()).toEqual({ eviction_events: 0, oom_events: 2, driver_reset_events: 1, ecc_events: 2 });
  });
});
