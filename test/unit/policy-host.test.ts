import { createPolicyHost } from '../../policy/host/policy-host';
import type { PolicyHost } from '../../policy/host/policy-host';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import { admitSnapshot, placeSnapshot } from '../support/policy-snapshots';
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

  it('ORCH-3048: a WASI component ranks replicas', async () => {
    const outcome = await host.place(placeSnapshot());
    expect(outcome.decision.replicaIds).toEqual(['pool-a-r7', 'pool-a-r6', 'pool-a-r5', 'pool-a-r4', 'pool-a-r3', 'pool-a-r2', 'pool-a-r1', 'pool-a-r0']);
  });
});
