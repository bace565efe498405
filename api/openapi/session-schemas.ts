import { z } from 'zod';

/** GET /v1/sessions/{id} (spec §2.8, ORCH-2004/3021/3022/3023). */
export const SessionInfoSchema = z
  .strictObject({
    ttl_ms_remaining: z.int().min(0).describe('Lifetime left, from the first turn (sessions.ttl_ms)'),
    turns: z.int().min(0).describe('Turns admitted so far; sessions.max_turns is the limit'),
    kv_bytes: z.int().min(0).describe('KV the session keeps resident on its replica after its last turn'),
    kv_warmth: z.boolean().describe('The last turn reused the session\'s cached KV on its replica'),
    kv_migrated: z.literal(false).describe('KV never moves between replicas (ORCH-3023)'),
    replica_id: z.string().nullable().describe('The session\'s last good replica (affinity, ORCH-3009)'),
  })
  .meta({ 'x-req-id': ['ORCH-2004', 'ORCH-3021'] });
