import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../../core/errors';
import { POLICY_ABI, POLICY_ABI_VERSION, parseSemVer } from '../../policy/sdk/abi-version';
import { REJECT_CODES } from '../../policy/sdk/decision';
import { decodeAdmitDecision, decodePlaceDecision } from '../../policy/sdk/wire';
import { capMemoryPages } from '../../policy/host/memory-limits';
import { webAssembly } from '../../policy/host/wasm-types';
import { Breaker } from '../../policy/host/breaker';
import { admitSnapshot, placeSnapshot } from '../../policy/examples/sample-snapshots';

const wit = readFileSync(path.join(__dirname, '../../policy/wit/policy.wit'), 'utf8');

describe('OC-POLICY-4002 / OC-POLICY-SDK-4101: the ABI version is explicit and in one place', () => {
  it('OC-POLICY-4002: the WIT package version equals POLICY_ABI', () => {
    expect(wit).toContain(`package ${POLICY_ABI.packageName}@${POLICY_ABI_VERSION};`);
    expect(parseSemVer(POLICY_ABI_VERSION)).toEqual({ major: POLICY_ABI.major, minor: POLICY_ABI.minor, patch: POLICY_ABI.patch });
  });

  it('reject codes in the WIT are exactly REJECT_CODES, each a core error code', () => {
    const block = /enum reject-code \{([^}]*)\}/.exec(wit)?.[1] ?? '';
    const witCodes = block.split(',').map((code) => code.trim()).filter((code) => code.length > 0);
    expect(witCodes).toEqual(REJECT_CODES.map((code) => code.toLowerCase().replaceAll('_', '-')));
    for (const code of REJECT_CODES) expect(ERROR_CODES).toContain(code);
  });

  it('OC-POLICY-SDK-4102: the ABI doc carries a migration section for this MAJOR', () => {
    const doc = readFileSync(path.join(__dirname, '../../.specs/policy-abi.md'), 'utf8');
    expect(doc).toContain(`## Migration notes`);
    expect(doc).toContain(`${POLICY_ABI.major}.0.0`);
  });
});

describe('decoding what a plugin returns', () => {
  it('maps reject codes to contract codes and keeps options', () => {
    const decoded = decodeAdmitDecision({ tag: 'reject', val: { code: 'deadline-unmet', retryAfterMs: undefined, policyLabel: 'x' } }, admitSnapshot());
    expect(decoded).toEqual({ ok: true, value: { kind: 'reject', code: 'DEADLINE_UNMET', policyLabel: 'x' } });
  });

  it('refuses a shed of a task that is not queued', () => {
    expect(decodeAdmitDecision({ tag: 'shed', val: 'nope' }, admitSnapshot())).toMatchObject({ ok: false });
    expect(decodeAdmitDecision({ tag: 'shed', val: 'queued-0003' }, admitSnapshot())).toEqual({ ok: true, value: { kind: 'shed', victimTaskId: 'queued-0003' } });
  });

  it('refuses duplicate and out-of-range ranking indices', () => {
    expect(decodePlaceDecision(Uint32Array.from([1, 1]), placeSnapshot())).toMatchObject({ ok: false, problem: 'ranking names candidate 1 twice' });
    expect(decodePlaceDecision([8], placeSnapshot())).toMatchObject({ ok: false });
    expect(decodePlaceDecision(Uint32Array.from([2, 0]), placeSnapshot())).toEqual({ ok: true, value: { replicaIds: ['pool-a-r2', 'pool-a-r0'] } });
  });
});

describe('OC-POLICY-4011: memory limits are written into the module', () => {
  // (module (memory 1)) and (module (memory 1 100)), assembled by hand.
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const noMax = Uint8Array.from([...header, 0x05, 0x03, 0x01, 0x00, 0x01]);
  const withMax = Uint8Array.from([...header, 0x05, 0x04, 0x01, 0x01, 0x01, 0x64]);

  it('adds a max to a memory without one', async () => {
    const capped = capMemoryPages(noMax, 16);
    expect(Array.from(capped.bytes.subarray(8))).toEqual([0x05, 0x04, 0x01, 0x01, 0x01, 0x10]);
    expect(capped.definedMemories).toBe(1);
    await expect(webAssembly().compile(capped.bytes)).resolves.toBeDefined();
  });

  it('lowers a larger max and keeps a smaller one', () => {
    expect(Array.from(capMemoryPages(withMax, 16).bytes.subarray(8))).toEqual([0x05, 0x04, 0x01, 0x01, 0x01, 0x10]);
    expect(Array.from(capMemoryPages(withMax, 200).bytes.subarray(8))).toEqual([0x05, 0x04, 0x01, 0x01, 0x01, 0x64]);
  });

  it('refuses a module whose initial memory is over the limit', () => {
    expect(() => capMemoryPages(withMax, 0)).toThrow('needs 64 KiB of memory at start, over the limit of 0 KiB');
  });
});

describe('breaker', () => {
  it('opens after the threshold, lets one trial through after the cooldown, closes on success', () => {
    let now = 0;
    const breaker = new Breaker({ failureThreshold: 2, cooldownMs: 100, now: () => now });
    expect(breaker.recordFailure()).toBe(false);
    expect(breaker.recordFailure()).toBe(true);
    expect(breaker.allow()).toBe(false);
    now = 100;
    expect(breaker.state).toBe('half-open');
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false); // one trial at a time
    breaker.recordSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
  });
});
