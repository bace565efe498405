import { createHash } from 'node:crypto';

/** ORCH_SEED_DEFAULT = hash(task_id): the first 48 bits of SHA-256, a JSON-safe integer. */
export function defaultSeed(taskId: string): number {
  return createHash('sha256').update(taskId).digest().readUIntBE(0, 6);
}
