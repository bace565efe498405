import { z } from 'zod';
import { ERROR_CODES } from './errors';

/**
 * What a pool worker pushes to the gateway for one attempt of one task: parts in order, numbered by
 * `seq` within the attempt. The gateway is the only emitter of SSE frames (design §2).
 */
export const WorkerPartSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('token'), text: z.string(), index: z.int().min(0) }),
  z.strictObject({ type: z.literal('metrics'), values: z.record(z.string(), z.unknown()) }),
  z.strictObject({
    type: z.literal('end'),
    tokensOut: z.int().min(0),
    decodeMs: z.number().min(0),
    // Added 2026-12-06 for the OpenAI surface's usage and finish_reason; not part of the SSE `end` payload.
    tokensIn: z.int().min(0).optional(),
    stopReason: z.enum(['eos', 'limit', 'word', 'none']).optional(),
  }),
  z.strictObject({
    type: z.literal('error'),
    code: z.enum(ERROR_CODES),
    message: z.string(),
    engine: z.string().optional(),
  }),
]);
export type WorkerPart = z.infer<typeof WorkerPartSchema>;

export const WorkerChunkSchema = z.strictObject({
  attempt: z.int().min(1),
  seq: z.int().min(0),
  parts: z.array(WorkerPartSchema).max(4096),
});
export type WorkerChunk = z.infer<typeof WorkerChunkSchema>;

/** The gateway's answer to a chunk: `cancelled` tells the worker to abort the engine request now. */
export type ChunkVerdict = 'accepted' | 'cancelled' | 'unknown';

/** A stream part as the gateway emits it; one exhaustive switch maps these to SSE frames (api/sse-frames.ts). */
export type StreamPart =
  | { readonly type: 'started'; readonly queuePosition: number; readonly predictedStartMs: number }
  | { readonly type: 'token'; readonly text: string; readonly index: number }
  | { readonly type: 'metrics'; readonly values: Readonly<Record<string, unknown>> }
  | {
      readonly type: 'end';
      readonly tokensOut: number;
      readonly decodeMs: number;
      readonly canceled?: boolean | undefined;
      /** The engine's prompt token count and stop reason, when a worker's `end` carried them (OpenAI usage). */
      readonly tokensIn?: number | undefined;
      readonly stopReason?: 'eos' | 'limit' | 'word' | 'none' | undefined;
    }
  | { readonly type: 'error'; readonly code: string; readonly message: string; readonly engine?: string | undefined };
