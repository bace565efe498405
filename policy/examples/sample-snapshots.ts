import type { AdmitSnapshot, PlaceSnapshot, PolicyRequest, Replica } from '../sdk/snapshot';

/**
 * Realistic sample snapshots, shared by the tests, the benchmark and the guide: a pool of 8
 * replicas of one replica set (one draining, one full), 64 queued tasks of 4 tenants.
 */

export function request(overrides: Partial<PolicyRequest> = {}): PolicyRequest {
  return {
    maxTokens: 512,
    ctx: 8192,
    deadlineMs: 30_000,
    expectedTokens: 300,
    promptBytes: 2048,
    priority: 'interactive',
    workload: 'completion',
    engine: 'llamacpp',
    kvHint: 'reuse',
    taskId: '7c0f1d2e-3a4b-4c5d-8e6f-000000000001',
    sessionId: '5e1a2b3c-4d5e-4f60-8172-000000000001',
    tenant: 'tenant-a',
    modelRef: 'hf:org/llama-3.1-8b-instruct-q4_k_m',
    ...overrides,
  };
}

export function replicas(count = 8): Replica[] {
  return Array.from({ length: count }, (_, index) => ({
    replicaId: `pool-a-r${index}`,
    replicaSetKey: 'llama-3.1-8b/q4_k_m/ctx8192',
    state: index === 5 ? ('draining' as const) : ('ready' as const),
    slotsTotal: 4,
    slotsBusy: (index * 3) % 5 === 4 ? 4 : (index * 3) % 5,
    kvUsedPermille: (index * 137) % 1000,
    inflightTokens: index * 1000,
  }));
}

export function admitSnapshot(overrides: Partial<AdmitSnapshot> = {}, requestOverrides: Partial<PolicyRequest> = {}): AdmitSnapshot {
  const tasks = Array.from({ length: 64 }, (_, index) => ({
    taskId: `queued-${String(index).padStart(4, '0')}`,
    tenant: `tenant-${'abcd'[index % 4] ?? 'a'}`,
    priority: index % 3 === 0 ? ('interactive' as const) : ('batch' as const),
    ageMs: (64 - index) * 250,
    maxTokens: 256 + index * 16,
  }));
  return {
    request: request(requestOverrides),
    queue: {
      capacity: 256,
      depthInteractive: tasks.filter((task) => task.priority === 'interactive').length,
      depthBatch: tasks.filter((task) => task.priority === 'batch').length,
      fullPolicy: 'reject',
      tasks,
    },
    replicas: replicas(),
    tenants: ['a', 'b', 'c', 'd'].map((suffix, index) => ({
      tenant: `tenant-${suffix}`,
      queued: 16,
      running: index + 2,
      tokensLastMinute: 10_000 * (index + 1),
    })),
    poolId: 'pool-a',
    ...overrides,
  };
}

export function placeSnapshot(overrides: Partial<PlaceSnapshot> = {}, requestOverrides: Partial<PolicyRequest> = {}): PlaceSnapshot {
  return {
    candidates: replicas(),
    request: request(requestOverrides),
    replicaSetKey: 'llama-3.1-8b/q4_k_m/ctx8192',
    affinityReplicaId: 'pool-a-r2',
    poolId: 'pool-a',
    ...overrides,
  };
}
