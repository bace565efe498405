import { z } from 'zod';

/**
 * Snapshots as TypeScript sees them (OC-POLICY-4001): the JavaScript shape jco lowers into the
 * records of policy/wit/policy.wit (camelCase fields, enum cases as kebab-case strings,
 * `option<T>` as `T | undefined`). The host validates every snapshot with these schemas before
 * either policy sees it, so a bad snapshot is the caller's error and never blamed on a plugin.
 * Objects are strict: a field the ABI does not carry is a bug in the caller, not extra context.
 */

const U32_MAX = 4_294_967_295;
const u32 = z.int().min(0).max(U32_MAX);
const permille = z.int().min(0).max(1000);
const label = z.string().max(512);

/** Saturates a non-negative count or duration into the ABI's u32 (see the header of policy.wit). */
export function toU32(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return value === Infinity ? U32_MAX : 0;
  return Math.min(Math.floor(value), U32_MAX);
}

export const PrioritySchema = z.enum(['interactive', 'batch']);
export const EngineSchema = z.enum(['llamacpp', 'vllm', 'tgi', 'triton']);
export const WorkloadSchema = z.enum(['completion', 'embedding', 'rerank']);
export const KvHintSchema = z.enum(['reuse', 'cold']);
export const FullQueuePolicySchema = z.enum(['reject', 'drop-lru', 'shed-low-priority']);
export const ReplicaStateSchema = z.enum(['ready', 'draining', 'unready']);

/** The request under decision: a TaskRequest without its prompt (only the prompt's size). */
export const PolicyRequestSchema = z.strictObject({
  maxTokens: u32,
  ctx: u32,
  deadlineMs: u32,
  expectedTokens: u32.optional(),
  promptBytes: u32,
  priority: PrioritySchema,
  workload: WorkloadSchema,
  engine: EngineSchema,
  kvHint: KvHintSchema.optional(),
  taskId: label,
  sessionId: label,
  tenant: label,
  modelRef: label,
});

export const QueuedTaskSchema = z.strictObject({
  taskId: label,
  tenant: label,
  priority: PrioritySchema,
  ageMs: u32,
  maxTokens: u32,
});

export const QueueStateSchema = z.strictObject({
  capacity: u32,
  depthInteractive: u32,
  depthBatch: u32,
  fullPolicy: FullQueuePolicySchema,
  /** Oldest first. */
  tasks: z.array(QueuedTaskSchema).max(100_000),
});

export const TenantUsageSchema = z.strictObject({
  tenant: label,
  queued: u32,
  running: u32,
  tokensLastMinute: u32,
});

export const ReplicaSchema = z.strictObject({
  replicaId: label,
  replicaSetKey: label,
  state: ReplicaStateSchema,
  slotsTotal: u32,
  slotsBusy: u32,
  kvUsedPermille: permille,
  inflightTokens: u32,
});

export const AdmitSnapshotSchema = z.strictObject({
  request: PolicyRequestSchema,
  queue: QueueStateSchema,
  replicas: z.array(ReplicaSchema).max(10_000),
  tenants: z.array(TenantUsageSchema).max(100_000),
  poolId: label,
});

export const PlaceSnapshotSchema = z.strictObject({
  /** Only replicas of `replicaSetKey`. */
  candidates: z.array(ReplicaSchema).max(10_000),
  request: PolicyRequestSchema,
  replicaSetKey: label,
  /** The replica that served this session last, if any (session affinity). */
  affinityReplicaId: label.optional(),
  poolId: label,
});

export type Priority = z.infer<typeof PrioritySchema>;
export type PolicyRequest = z.infer<typeof PolicyRequestSchema>;
export type QueuedTask = z.infer<typeof QueuedTaskSchema>;
export type QueueState = z.infer<typeof QueueStateSchema>;
export type TenantUsage = z.infer<typeof TenantUsageSchema>;
export type Replica = z.infer<typeof ReplicaSchema>;
export type AdmitSnapshot = z.infer<typeof AdmitSnapshotSchema>;
export type PlaceSnapshot = z.infer<typeof PlaceSnapshotSchema>;
