/** The engines a TaskRequest may name (ORCH-2008). */
export const ENGINES = ['llamacpp', 'vllm', 'tgi', 'triton'] as const;
export type Engine = (typeof ENGINES)[number];

/**
 * The engines a pool can serve: the ones with an adapter registered in gpu-workers/engines/engine-registry.ts
 * (a unit test keeps the two in step). Config refuses a pool of any other engine rather than speak another
 * engine's protocol to it.
 */
export const ENGINES_WITH_ADAPTER: readonly Engine[] = ['llamacpp', 'vllm', 'tgi', 'triton'];

/** The engines with an in-process test double, which `engine_runtime: {kind: mock}` starts. */
export const ENGINES_WITH_TEST_DOUBLE: readonly Engine[] = ['llamacpp', 'tgi'];

/**
 * Engines whose adapter has met only a test double, never the real engine (no TGI server installs from a package
 * registry). Pool health says this for every pool of such an engine, whatever serves it.
 */
export const ADAPTER_UNVERIFIED: Readonly<Partial<Record<Engine, string>>> = {
  tgi: 'the TGI adapter is UNVERIFIED against a real TGI server: it was tested only against its test double (.specs/engines/tgi.md)',
};

/**
 * Engines whose adapter makes no determinism claim (`capabilities.determinism: 'none'`; the registry test keeps
 * this in step): their pools serve best_effort unless configured otherwise, and config refuses a strict one.
 */
export const ENGINES_WITHOUT_DETERMINISM: readonly Engine[] = ['tgi'];

/**
 * The engine each spawned runtime kind runs (a pool worker launcher in gpu-workers/pool-manager/ per kind).
 * `mock` and `external` are not here: they work for any engine (the mock where it has a double).
 */
export const SPAWNED_RUNTIME_ENGINE: Readonly<Record<string, Engine>> = { 'llama-server': 'llamacpp', 'triton-server': 'triton', vllm: 'vllm' };

export const PRIORITIES = ['interactive', 'batch'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * Temporal priority keys (1 is dispatched first). Strict priority across keys, FIFO within one,
 * fairness by client within one (design §3).
 */
export const PRIORITY_KEY: Readonly<Record<Priority, number>> = { interactive: 1, batch: 4 };

export const FULL_QUEUE_POLICIES = ['reject', 'drop-lru', 'shed-low-priority'] as const;
export type FullQueuePolicy = (typeof FULL_QUEUE_POLICIES)[number];
