import pino from 'pino';
import { AdmissionController } from '../../api/admission/admission-controller';
import { PoolLedger } from '../../api/admission/pool-ledger';
import { RateLimiter } from '../../api/admission/rate-limiter';
import type { TemporalBacklog } from '../../api/admission/temporal-backlog';
import { TenantTokenWindow } from '../../api/admission/tenant-token-window';
import { placementCandidates } from '../../api/placement/placement-candidates';
import { replicaStatusFixture } from '../support/replica-status-fixture';
import { parseConfig } from '../../core/config';
import { TaskRequestSchema } from '../../core/task-request';
import { createPolicyHost, type AdmitSnapshot, type PolicyHost } from '../../policy';

const QUEUED = 5_000;
const logger = pino({ level: 'silent' });

function pool(fullPolicy: 'reject' | 'drop-lru' | 'shed-low-priority') {
  const { config } = parseConfig({
    pools: [{ id: 'p', engine: 'llamacpp', model: 'mock:p', devices: [0], queue: { capacity: QUEUED, full_policy: fullPolicy }, engine_runtime: { kind: 'mock', ttft_ms: 1, inter_token_ms: 1, slots: 1 } }],
  });
  const entry = config.pools[0];
  if (!entry) throw new Error('no pool');
  return entry;
}

/** A controller over a full queue whose policy host records the snapshots it is given. */
async function fullController(fullPolicy: 'reject' | 'drop-lru' | 'shed-low-priority', priority: 'interactive' | 'batch' = 'batch') {
  const ledger = new PoolLedger();
  for (let index = 0; index < QUEUED; index += 1) ledger.admitted('p', { taskId: `q${index}`, priority, tenant: 't', maxTokens: 8, admittedAt: index });
  const builtin = await createPolicyHost(undefined, logger);
  const seen: AdmitSnapshot[] = [];
  const policy: PolicyHost = { ...builtin, active: builtin.active, admit: (snapshot) => (seen.push(snapshot), builtin.admit(snapshot)) };
  const backlog = { view: () => undefined } as unknown as TemporalBacklog;
  const controller = new AdmissionController({ ledger, backlog, limiter: new RateLimiter(), policies: new Map([['p', policy]]), slotsOf: () => 1, logger });
  return { controller, seen };
}

const request = (priority: 'interactive' | 'batch') =>
  TaskRequestSchema.parse({ task_id: crypto.randomUUID(), session_id: crypto.randomUUID(), workload: 'completion', model_ref: 'mock:p', engine: 'llamacpp', ctx: 512, priority, prompt: 'x', max_tokens: 8, deadline_ms: 86_400_000 });

describe('OC-CORE-1001 ORCH-2007: the built-in policy gets only the queued tasks it reads, so a refusal never walks a deep queue', () => {
  test('OC-CORE-1001: full queue under `reject`: the refusal is decided on counts, with no task list', async () => {
    const { controller, seen } = await fullController('reject');
    await expect(controller.admit(pool('reject'), request('batch'), 't')).rejects.toMatchObject({ code: 'ADMISSION_REJECT', details: expect.objectContaining({ policyLabel: 'reject' }) });
    expect(seen.map((snapshot) => snapshot.queue.tasks.length)).toEqual([0]);
  });

  test('OC-CORE-1002: full queue under `drop-lru`: the snapshot holds the oldest task, the one shed', async () => {
    const { controller, seen } = await fullController('drop-lru');
    await expect(controller.admit(pool('drop-lru'), request('batch'), 't')).resolves.toMatchObject({ victimTaskId: 'q0' });
    expect(seen.map((snapshot) => snapshot.queue.tasks.map((task) => task.taskId))).toEqual([['q0']]);
  });

  test('OC-CORE-1001: `shed-low-priority` for an interactive request still searches the bounded list for the newest batch task', async () => {
    const { controller, seen } = await fullController('shed-low-priority');
    await expect(controller.admit(pool('shed-low-priority'), request('interactive'), 't')).resolves.toMatchObject({ victimTaskId: 'q1023' });
    expect(seen[0]?.queue.tasks.length).toBe(1024);
  });
});

describe('issue 13: admission policies see real load', () => {
  test('the snapshot carries each Ready replica\'s published slot load and each tenant\'s tokens over the last minute', async () => {
    const ledger = new PoolLedger();
    ledger.admitted('p', { taskId: 'q0', priority: 'batch', tenant: 't', maxTokens: 8, admittedAt: 0 });
    const builtin = await createPolicyHost(undefined, logger);
    const seen: AdmitSnapshot[] = [];
    const policy: PolicyHost = { ...builtin, active: builtin.active, admit: (snapshot) => (seen.push(snapshot), builtin.admit(snapshot)) };
    const backlog = { view: () => ({ interactive: 0, batch: 1, readyReplicas: ['poller-identity'] }) } as unknown as TemporalBacklog;
    const tokens = new TenantTokenWindow();
    const now = Date.now();
    tokens.record('t', 120, now - 30_000);
    tokens.record('t', 80, now);
    tokens.record('t', 1_000, now - 61_000);
    const records = [replicaStatusFixture('p-r0', { pool_id: 'p', slots_total: 4, slots_busy: 3 }), replicaStatusFixture('p-r1', { pool_id: 'p', state: 'unready', ready: false })];
    const controller = new AdmissionController({ ledger, backlog, limiter: new RateLimiter(), policies: new Map([['p', policy]]), slotsOf: () => 4, logger, replicaRecords: () => records, tenantTokens: tokens });
    await controller.admit(pool('reject'), request('batch'), 't');
    expect(seen[0]?.replicas).toEqual([expect.objectContaining({ replicaId: 'p-r0', slotsTotal: 4, slotsBusy: 3 })]);
    expect(seen[0]?.tenants).toEqual([expect.objectContaining({ tenant: 't', tokensLastMinute: 200 })]);
  });

  test('each Ready replica\'s published KV use and in-flight tokens reach admission and placement policies; a figure the engine does not report is 0', async () => {
    const ledger = new PoolLedger();
    const builtin = await createPolicyHost(undefined, logger, { validateSnapshots: true });
    const seen: AdmitSnapshot[] = [];
    const policy: PolicyHost = { ...builtin, active: builtin.active, admit: (snapshot) => (seen.push(snapshot), builtin.admit(snapshot)) };
    const backlog = { view: () => undefined } as unknown as TemporalBacklog;
    const records = [
      replicaStatusFixture('p-r0', { pool_id: 'p', slots_total: 2, slots_busy: 1, kv_used_permille: 412, inflight_tokens: 1_337 }),
      replicaStatusFixture('p-r1', { pool_id: 'p', kv_used_permille: null, inflight_tokens: null }),
      // A record from a replica that predates the figures.
      replicaStatusFixture('p-r2', { pool_id: 'p' }),
    ];
    const controller = new AdmissionController({ ledger, backlog, limiter: new RateLimiter(), policies: new Map([['p', policy]]), slotsOf: () => 6, logger, replicaRecords: () => records });
    await controller.admit(pool('reject'), request('batch'), 't');
    expect(seen[0]?.replicas.map(({ replicaId, kvUsedPermille, inflightTokens }) => ({ replicaId, kvUsedPermille, inflightTokens }))).toEqual([
      { replicaId: 'p-r0', kvUsedPermille: 412, inflightTokens: 1_337 },
      { replicaId: 'p-r1', kvUsedPermille: 0, inflightTokens: 0 },
      { replicaId: 'p-r2', kvUsedPermille: 0, inflightTokens: 0 },
    ]);
    const placement = placementCandidates(records);
    expect(placement?.candidates.find((candidate) => candidate.replicaId === 'p-r0')).toMatchObject({ kvUsedPermille: 412, inflightTokens: 1_337 });
  });
});
