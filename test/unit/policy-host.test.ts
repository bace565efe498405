import { createPolicyHost } from '../../policy/host/policy-host';
import type { PolicyHost } from '../../policy/host/policy-host';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import { admitSnapshot, placeSnapshot } from '../../policy/examples/sample-snapshots';
import { recordingLogger } from '../support/policy-logger';

describe('policy host with the example plugin (max-tokens-cap)', () => {
  let host: PolicyHost;
  const logger = recordingLogger();

  beforeAll(async () => {
    const path = await buildExamplePlugin();
    host = await createPolicyHost({ id: 'max-tokens-cap', version: '0.1.0', path }, logger);
  });
  afterAll(async () => {
    await host.close();
  });

  it('ORCH-3048: a WASI component decides admission', async () => {
    const accepted = await host.admit(admitSnapshot({}, { maxTokens: 2048 }));
    expect(accepted.decision).toEqual({ kind: 'accept' });
    expect(accepted.decidedBy).toEqual({ kind: 'plugin', pluginId: 'max-tokens-cap', pluginVersion: '0.1.0' });
    const rejected = await host.admit(admitSnapshot({}, { maxTokens: 2049 }));
    expect(rejected.decision).toEqual({ kind: 'reject', code: 'ADMISSION_REJECT', retryAfterMs: 1000, policyLabel: 'max-tokens-over-2048' });
  });

  it('ORCH-3048: a WASI component ranks replicas — the example pins the last candidate only', async () => {
    const outcome = await host.place(placeSnapshot());
    expect(outcome.decision.replicaIds).toEqual(['pool-a-r7']);
    const none = await host.place(placeSnapshot({ candidates: [] }));
    expect(none.decision.replicaIds).toEqual([]);
  });
});

describe('OC-POLICY-4001: decisions are deterministic', () => {
  it('OC-POLICY-4001: the same snapshot gives the same decision, call after call and host after host', async () => {
    const path = await buildExamplePlugin();
    const hosts = [
      await createPolicyHost({ id: 'a', version: '1', path }, recordingLogger()),
      await createPolicyHost({ id: 'b', version: '1', path }, recordingLogger()),
    ];
    try {
      const seen = new Set<string>();
      for (const host of hosts) {
        for (let call = 0; call < 50; call += 1) {
          const admitted = await host.admit(admitSnapshot({}, { maxTokens: 100 + call * 100 }));
          const placed = await host.place(placeSnapshot());
          seen.add(JSON.stringify([call, admitted.decision, placed.decision]));
        }
      }
      expect(seen.size).toBe(50);
    } finally {
      await Promise.all(hosts.map((host) => host.close()));
    }
  });
});

describe('OC-POLICY-4020: every decision is logged', () => {
  it('OC-POLICY-4020: the log line carries plugin id, version, decision and latency', async () => {
    const logger = recordingLogger();
    const host = await createPolicyHost({ id: 'max-tokens-cap', version: '0.1.0', path: await buildExamplePlugin() }, logger);
    try {
      await host.admit(admitSnapshot({}, { maxTokens: 4096, taskId: 'task-log' }));
      const line = logger.lines.find((entry) => entry.message === 'policy decision');
      expect(line?.object).toMatchObject({
        plugin_id: 'max-tokens-cap',
        plugin_version: '0.1.0',
        abi_version: '1.0.0',
        policy_fn: 'admit',
        decided_by: 'plugin',
        decision: 'reject:ADMISSION_REJECT',
        pool_id: 'pool-a',
        task_id: 'task-log',
      });
      expect(typeof line?.object.latency_ms).toBe('number');
      expect(logger.lines[0]?.message).toBe('policy plugin loaded');
    } finally {
      await host.close();
    }
  });
});

describe('ORCH-3048: the built-in policy sits behind the same interface', () => {
  it('ORCH-3048: without a plugin the host answers natively, with the same outcome shape and logs', async () => {
    const logger = recordingLogger();
    const host = await createPolicyHost(undefined, logger);
    const admitted = await host.admit(admitSnapshot({}, { maxTokens: 4096 }));
    expect(admitted.decision).toEqual({ kind: 'accept' });
    expect(admitted.decidedBy).toEqual({ kind: 'builtin', policyId: 'builtin', policyVersion: '1.0.0' });
    expect(logger.lines[0]?.object).toMatchObject({ policy_id: 'builtin', decided_by: 'builtin', decision: 'accept' });
    await host.close();
  });

  it('ORCH-3048: plugin and built-in policy run side by side on one snapshot and visibly differ', async () => {
    const native = await createPolicyHost(undefined, recordingLogger());
    const plugin = await createPolicyHost({ id: 'max-tokens-cap', version: '0.1.0', path: await buildExamplePlugin() }, recordingLogger());
    try {
      const big = admitSnapshot({}, { maxTokens: 4096 });
      expect((await native.admit(big)).decision.kind).toBe('accept');
      expect((await plugin.admit(big)).decision.kind).toBe('reject');
      const snapshot = placeSnapshot();
      const nativeRanking = (await native.place(snapshot)).decision.replicaIds;
      const pluginRanking = (await plugin.place(snapshot)).decision.replicaIds;
      expect(nativeRanking[0]).toBe('pool-a-r2'); // the session's replica, which has a free slot
      expect(pluginRanking[0]).toBe('pool-a-r7');
    } finally {
      await native.close();
      await plugin.close();
    }
  });

  it('with validateSnapshots, a malformed snapshot is the caller\'s error (INTERNAL), never charged to the plugin', async () => {
    const host = await createPolicyHost(undefined, recordingLogger(), { validateSnapshots: true });
    const bad = { ...admitSnapshot(), extra: true } as unknown as Parameters<PolicyHost['admit']>[0];
    await expect(host.admit(bad)).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
