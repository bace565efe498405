import type { WasmModule } from './wasm-types';

/** Messages between plugin-sandbox.ts (host side) and sandbox-worker.ts (inside the worker). */

/** Capabilities a pool's config may grant one plugin (OC-POLICY-4010). Everything else is absent. */
export interface PluginGrants {
  readonly clocks: boolean;
  readonly random: boolean;
}

export interface SandboxWorkerData {
  /** The jco-generated instantiation module (ES module source). */
  readonly bindingsSource: string;
  /** Core modules by the file name the bindings ask for, compiled once by the host and cloned here. */
  readonly coreModules: Readonly<Record<string, WasmModule>>;
  /** Versioned export to call, e.g. `llama-orch:policy/policy@1.0.0`. */
  readonly exportName: string;
  readonly grants: PluginGrants;
  /** Linear memory the plugin may hold across all its memories; checked after every call. */
  readonly memoryLimitBytes: number;
}

export type PolicyFunction = 'admit' | 'place';

export interface CallRequest {
  readonly callId: number;
  readonly fn: PolicyFunction;
  readonly snapshot: unknown;
}

export type FailureKind = 'trap' | 'memory-limit';

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'load-error'; readonly message: string }
  | { readonly type: 'result'; readonly callId: number; readonly value: unknown; readonly memoryBytes: number }
  | {
      readonly type: 'failure';
      readonly callId: number;
      readonly kind: FailureKind;
      readonly message: string;
      readonly memoryBytes: number;
    };
