import type { EngineAdapter, EngineProperties } from '../engines/engine-adapter';
import type { ReplicaFailure } from './replica-failure';

export type LaunchPhase = 'verifying' | 'loading' | 'self_test';

export interface LaunchProgress {
  enter(phase: LaunchPhase): void;
}

/** An engine that passed its start-up checks and is ready to serve. */
export interface LaunchedEngine {
  readonly adapter: EngineAdapter;
  readonly properties: EngineProperties;
  readonly mockEngine: boolean;
  /** KV cache bytes per token in a slot (ORCH-3022 kv_bytes); absent → 0 reported. */
  readonly kvBytesPerToken?: number | undefined;
  /** The model this engine serves: the pool's, or the one a reload asked for. */
  readonly modelRef: string;
  /** `sha256:<hex>` of the verified model file, when the runtime loads one. */
  readonly modelDigest: string | undefined;
  /** The engine's HTTP base URL on loopback, when the runtime started one (a wrapping runtime talks to it). */
  readonly engineUrl?: string | undefined;
  /** The engine's process id, when the replica owns the process. */
  readonly pid: number | undefined;
  /** Runs the start-up self-test again on the live engine (a reload's canary check); absent where the runtime has none. */
  readonly selfTest?: (() => Promise<void>) | undefined;
  /** Resolves when the engine fails on its own (crash); never rejects. */
  readonly failed: Promise<ReplicaFailure>;
  stop(): Promise<void>;
}

export interface HostCheck {
  /** True under ORCH-1101's development override. */
  readonly cpuInference: boolean;
}

/** Brings up one replica's engine; one implementation per kind of `engine_runtime`. */
export interface EngineLauncher {
  readonly mockEngine: boolean;
  /** Once per process, before the first launch; a non-retriable failure means never serve. */
  checkHost(): Promise<HostCheck>;
  /** Starts the engine on `modelRef` (a launch parameter, so a reload goes through the same checks). */
  launch(progress: LaunchProgress, modelRef: string): Promise<LaunchedEngine>;
}
