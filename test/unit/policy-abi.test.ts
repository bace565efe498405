import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../../core/errors';
import { POLICY_ABI, POLICY_ABI_VERSION, parseSemVer } from '../../policy/sdk/abi-version';
import type { SemVer } from '../../policy/sdk/abi-version';
import { REJECT_CODES } from '../../policy/sdk/decision';
import { decodeAdmitDecision, decodePlaceDecision } from '../../policy/sdk/wire';
import { policyAbiFingerprint } from '../../policy/tools/abi-fingerprint';
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
});

/** What is wrong with the recorded versions for this WIT (OC-POLICY-SDK-4102); empty when nothing is. */
function abiRecordFindings(witText: string, doc: string): string[] {
  const findings: string[] = [];
  const version = /package\s+[a-z0-9-]+:[a-z0-9-]+@(\S+);/.exec(witText)?.[1] ?? '(none)';
  const section = /### Recorded ABI versions[^\n]*\n([\s\S]*?)(?=\n#{2,3} )/.exec(doc)?.[1] ?? '';
  const rows = [...section.matchAll(/^\| (\d+\.\d+\.\d+) \| ([0-9a-f]{64}) \|$/gm)].map((match) => ({ version: match[1] ?? '', fingerprint: match[2] ?? '' }));
  const notes = doc.slice(doc.indexOf('## Migration notes'));
  const fingerprint = policyAbiFingerprint(witText);
  const current = rows.find((row) => row.version === version);
  if (current === undefined) {
    findings.push(`policy.wit is ${version}, which .specs/policy-abi.md does not record: append "| ${version} | ${fingerprint} |" to "Recorded ABI versions"`);
  } else if (current.fingerprint !== fingerprint) {
    findings.push(
      `policy.wit defines another ABI than the one recorded for ${version} (now ${fingerprint}): a released version never changes. ` +
        'Bump the package version and POLICY_ABI (MAJOR for anything removed, renamed, retyped or reordered; MINOR for appends), ' +
        'append the new version with this fingerprint to "Recorded ABI versions", and for a MAJOR add its migration note under "## Migration notes"',
    );
  }
  const order = (semver: SemVer): number => (semver.major * 1_000 + semver.minor) * 1_000 + semver.patch;
  rows.forEach((row, index) => {
    const parsed = parseSemVer(row.version);
    const previous = index > 0 ? parseSemVer(rows[index - 1]?.version ?? '') : undefined;
    if (parsed === undefined) return;
    if (previous !== undefined && order(parsed) <= order(previous)) findings.push(`recorded version ${row.version} does not follow ${rows[index - 1]?.version ?? ''}`);
    const heading = new RegExp(`^### ${parsed.major}\\.0\\.0\\b[^\\n]*\\n+([^#\\s][^\\n]*)`, 'm');
    if (parsed.major > 1 && !heading.test(notes)) findings.push(`MAJOR ${parsed.major} has no migration note: add "### ${parsed.major}.0.0" with what changed and how to rebuild a ${parsed.major - 1}.x plugin under "## Migration notes"`);
  });
  return findings;
}

describe('OC-POLICY-SDK-4102: a breaking ABI change needs a MAJOR bump and a migration note', () => {
  const doc = readFileSync(path.join(__dirname, '../../.specs/policy-abi.md'), 'utf8');

  it('policy.wit defines the ABI recorded for its version, and every MAJOR after 1 has a migration note', () => {
    expect(abiRecordFindings(wit, doc)).toEqual([]);
  });

  it('changing the ABI without a bump, or bumping MAJOR without a migration note, is found (the check can fail)', () => {
    // Comments and layout are not the ABI.
    expect(abiRecordFindings(wit.replaceAll('///', '// ').replaceAll('  ', '    '), doc)).toEqual([]);
    // A field retyped, a field removed, fields reordered: the version has to change.
    const retyped = wit.replace('max-tokens: u32,', 'max-tokens: u64,');
    const removed = wit.replace('    kv-hint: option<kv-hint>,\n', '');
    const reordered = wit.replace('    max-tokens: u32,\n    ctx: u32,', '    ctx: u32,\n    max-tokens: u32,');
    for (const changed of [retyped, removed, reordered]) {
      expect(changed).not.toBe(wit);
      expect(abiRecordFindings(changed, doc)).toEqual([expect.stringContaining(`another ABI than the one recorded for ${POLICY_ABI_VERSION}`)]);
    }
    // Bumped to 2.0.0 and recorded, but with no migration note.
    const bumped = retyped.replace(`@${POLICY_ABI_VERSION};`, '@2.0.0;');
    const recorded = doc.replace(/(\| 1\.0\.0 \| [0-9a-f]{64} \|\n)/, `$1| 2.0.0 | ${policyAbiFingerprint(bumped)} |\n`);
    expect(abiRecordFindings(bumped, recorded)).toEqual([expect.stringContaining('MAJOR 2 has no migration note')]);
    const withNote = recorded.replace('## Migration notes\n', '## Migration notes\n\n### 2.0.0\n\n`request.max-tokens` is a u64: rebuild against policy.wit 2.x.\n');
    expect(abiRecordFindings(bumped, withNote)).toEqual([]);
    expect(abiRecordFindings(bumped, doc)).toEqual([expect.stringContaining('policy.wit is 2.0.0, which .specs/policy-abi.md does not record')]);
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
