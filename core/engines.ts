/** The engines a TaskRequest may name (ORCH-2008). */
export const ENGINES = ['llamacpp', 'vllm', 'tgi', 'triton'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * The engines a pool can serve today: the ones with an adapter that speaks their protocol
 * (gpu-workers/engines/). A pool of another engine would be spoken to in llama.cpp's protocol while its
 * health said vLLM, so config refuses it (issue 12 adds the other adapters).
 */
export const ENGINES_WITH_ADAPTER: readonly Engine[] = ['llamacpp'];

export const PRIORITIES = ['interactive', 'batch'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * Temporal priority keys (1 is dispatched first). Strict priority across keys, FIFO within one,
 * fairness by client within one (design §3).
 */
export const PRIORITY_KEY: Readonly<Record<Priority, number>> = { interactive: 1, batch: 4 };

export const FULL_QUEUE_POLICIES = ['reject', 'drop-lru', 'shed-low-priority'] as const;
export type FullQueuePolicy = (typeof FULL_QUEUE_POLICIES)[number];
