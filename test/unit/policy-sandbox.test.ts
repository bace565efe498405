import { createPolicyHost } from '../../policy/host/policy-host';
import type { PolicyHost } from '../../policy/host/policy-host';
import type { PolicyPluginConfigInput } from '../../policy/config';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import { fixtures } from '../support/policy-fixtures';
import { recordingLogger } from '../support/policy-logger';
import { admitSnapshot } from '../../policy/examples/sample-snapshots';

function pluginConfig(path: string, overrides: Partial<PolicyPluginConfigInput> = {}): PolicyPluginConfigInput {
  return { id: 'fixture', version: '0.0.1', path, ...overrides };
}

async function refusal(config: PolicyPluginConfigInput): Promise<{ reason?: unknown; message: string }> {
  try {
    const host = await createPolicyHost(config, recordingLogger());
    await host.close();
  } catch (error) {
    return error as { reason?: unknown; message: string };
  }
  throw new Error('the plugin was loaded');
}

describe('OC-POLICY-4010: sandbox escapes are refused', () => {
  it('OC-POLICY-4010: a plugin that reads a file (wasi:filesystem) is refused at start-up', async () => {
    const error = await refusal(pluginConfig(await fixtures.readsFile()));
    expect(error.reason).toBe('forbidden-import');
    expect(error.message).toContain('wasi:filesystem/preopens (never granted)');
  });

  it('OC-POLICY-4010: a plugin that opens a socket (wasi:sockets) is refused at start-up', async () => {
    const error = await refusal(pluginConfig(await fixtures.opensSocket()));
    expect(error.reason).toBe('forbidden-import');
    expect(error.message).toContain('wasi:sockets/tcp-create-socket (never granted)');
  });

  it('OC-POLICY-4010: a plugin that reads the clock without a grant is refused, naming the grant', async () => {
    const error = await refusal(pluginConfig(await fixtures.readsClock()));
    expect(error.reason).toBe('forbidden-import');
    expect(error.message).toContain('wasi:clocks/monotonic-clock (needs grants.clocks: true)');
  });

  it('OC-POLICY-4010: with grants.clocks the same plugin loads and reads the host clock', async () => {
    const host = await createPolicyHost(pluginConfig(await fixtures.readsClock(), { grants: { clocks: true } }), recordingLogger());
    try {
      const outcome = await host.admit(admitSnapshot());
      expect(outcome.decidedBy.kind).toBe('plugin');
      expect(outcome.decision).toEqual({ kind: 'accept' });
    } finally {
      await host.close();
    }
  });

  it('OC-POLICY-4010: filesystem and network cannot be granted at all', async () => {
    const path = await buildExamplePlugin();
    const error = await refusal(pluginConfig(path, { grants: { filesystem: true } as unknown as { filesystem: false } }));
    expect(error.message).toContain('filesystem cannot be granted in policy ABI 1.x');
  });
});

describe('OC-POLICY-4011: CPU and memory are bounded per call', () => {
  it('OC-POLICY-4011: an infinite loop is cut off within the CPU bound and the host keeps serving', async () => {
    const logger = recordingLogger();
    const host = await createPolicyHost(pluginConfig(await fixtures.infiniteLoop(), { limits: { call_timeout_ms: 50 } }), logger);
    try {
      const first = await host.admit(admitSnapshot());
      expect(first.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'timeout' });
      expect(first.decision).toEqual({ kind: 'accept' }); // the built-in policy's answer
      expect(first.latencyMs).toBeGreaterThanOrEqual(49);
      // The worker was replaced: the plugin answers place again (it only loops in admit).
      const next = await host.place({ candidates: [], request: admitSnapshot().request, replicaSetKey: 'k', poolId: 'pool-a' });
      expect(next.decidedBy.kind).toBe('plugin');
      const again = await host.admit(admitSnapshot());
      expect(again.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'timeout' });
      expect(logger.lines.some((line) => line.level === 'warn' && line.object.fallback_reason === 'timeout')).toBe(true);
    } finally {
      await host.close();
    }
  });

  it('OC-POLICY-4011: calls queued behind a runaway call are served by the replacement worker', async () => {
    const host = await createPolicyHost(pluginConfig(await fixtures.infiniteLoop(), { limits: { call_timeout_ms: 30 } }), recordingLogger());
    try {
      const place = { candidates: [], request: admitSnapshot().request, replicaSetKey: 'k', poolId: 'pool-a' };
      const [admitted, ...placed] = await Promise.all([host.admit(admitSnapshot()), ...Array.from({ length: 20 }, () => host.place(place))]);
      expect(admitted?.decidedBy).toMatchObject({ reason: 'timeout' });
      expect(placed.map((outcome) => outcome.decidedBy.kind)).toEqual(Array.from({ length: 20 }, () => 'plugin'));
    } finally {
      await host.close();
    }
  });

  it('OC-POLICY-4011: a memory bomb is stopped at the memory bound and the host keeps serving', async () => {
    const host = await createPolicyHost(
      pluginConfig(await fixtures.memoryBomb(), { limits: { memory_bytes: 1024 * 1024 } }),
      recordingLogger(),
    );
    try {
      const first = await host.admit(admitSnapshot());
      expect(first.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'memory-limit' });
      const next = await host.place({ candidates: [], request: admitSnapshot().request, replicaSetKey: 'k', poolId: 'pool-a' });
      expect(next.decidedBy.kind).toBe('plugin');
    } finally {
      await host.close();
    }
  });

  it('OC-POLICY-4011: a plugin that needs more memory at start than its limit is refused', async () => {
    const error = await refusal(pluginConfig(await fixtures.bigStart(), { limits: { memory_bytes: 1024 * 1024 } }));
    expect(error.reason).toBe('memory');
    expect(error.message).toContain('needs 2048 KiB of memory at start, over the limit of 1024 KiB');
  });
});

describe('misbehaving plugins fall back and trip the breaker', () => {
  it('a trap falls back to the built-in policy with reason trap', async () => {
    const host = await createPolicyHost(pluginConfig(await fixtures.trap()), recordingLogger());
    try {
      const outcome = await host.admit(admitSnapshot());
      expect(outcome.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'trap' });
    } finally {
      await host.close();
    }
  });

  it('a ranking that names a missing candidate is an invalid decision', async () => {
    const host = await createPolicyHost(pluginConfig(await fixtures.badRanking()), recordingLogger());
    try {
      const outcome = await host.place({ candidates: [], request: admitSnapshot().request, replicaSetKey: 'k', poolId: 'pool-a' });
      expect(outcome.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'invalid-decision' });
    } finally {
      await host.close();
    }
  });

  it('a plugin that traps repeatedly is disabled by the breaker, then tried again after the cooldown', async () => {
    let now = 1_000_000;
    const logger = recordingLogger();
    const host = await createPolicyHost(
      pluginConfig(await fixtures.trap(), { breaker: { failure_threshold: 3, cooldown_ms: 10_000 } }),
      logger,
      { now: () => now },
    );
    try {
      const reasons: unknown[] = [];
      for (let call = 0; call < 5; call += 1) {
        const outcome = await host.admit(admitSnapshot());
        reasons.push(outcome.decidedBy.kind === 'builtin-fallback' ? outcome.decidedBy.reason : outcome.decidedBy.kind);
      }
      expect(reasons).toEqual(['trap', 'trap', 'trap', 'breaker-open', 'breaker-open']);
      expect(logger.lines.filter((line) => line.level === 'error')).toHaveLength(1);
      now += 10_000;
      const trial = await host.admit(admitSnapshot());
      expect(trial.decidedBy).toMatchObject({ reason: 'trap' }); // half-open: one trial reached the plugin
      const after = await host.admit(admitSnapshot());
      expect(after.decidedBy).toMatchObject({ reason: 'breaker-open' });
    } finally {
      await host.close();
    }
  });
});

describe('OC-POLICY-4002: the host refuses a plugin of another ABI', () => {
  it('OC-POLICY-4002: a plugin of another MAJOR is refused with a clear message', async () => {
    const error = await refusal(pluginConfig(await fixtures.nextMajor()));
    expect(error.reason).toBe('abi-mismatch');
    expect(error.message).toContain('built for policy ABI 2.0.0, and this host speaks 1.0.0');
  });

  it('OC-POLICY-4002: a plugin of a newer MINOR is refused (it may read fields this host never sends)', async () => {
    const error = await refusal(pluginConfig(await fixtures.nextMinor()));
    expect(error.reason).toBe('abi-mismatch');
    expect(error.message).toContain('needs policy ABI 1.1.0, newer than');
  });
});

describe('a bad plugin fails start-up with a clear message', () => {
  it('a missing file', async () => {
    const error = await refusal(pluginConfig('/nonexistent/plugin.wasm'));
    expect(error.reason).toBe('unreadable');
    expect(error.message).toContain('policy plugin "fixture" refused (unreadable): cannot read /nonexistent/plugin.wasm');
  });

  it('a pinned sha256 that does not match', async () => {
    const error = await refusal(pluginConfig(await buildExamplePlugin(), { sha256: '0'.repeat(64) }));
    expect(error.reason).toBe('integrity');
  });

  it('a file that is not a component', async () => {
    const error = await refusal(pluginConfig(__filename));
    expect(error.reason).toBe('not-a-component');
  });
});

describe('PolicyHost lifecycle', () => {
  let host: PolicyHost;
  beforeAll(async () => {
    host = await createPolicyHost(pluginConfig(await buildExamplePlugin()), recordingLogger());
  });

  it('after close, decisions come from the built-in policy', async () => {
    await host.close();
    const outcome = await host.admit(admitSnapshot({}, { maxTokens: 9999 }));
    expect(outcome.decidedBy).toMatchObject({ kind: 'builtin-fallback', reason: 'closed' });
    expect(outcome.decision).toEqual({ kind: 'accept' });
  });
});
