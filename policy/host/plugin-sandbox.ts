import type { Worker } from 'node:worker_threads';
import type { PolicyPluginConfig } from '../config';
import type { LoadedPlugin } from './plugin-loader';
import { PolicyPluginLoadError } from './plugin-load-error';
import type { CallRequest, PolicyFunction, SandboxWorkerData, WorkerMessage } from './sandbox-protocol';
import { startWorker } from './worker-script';

/** How a sandboxed call ended when it did not return a value. */
export type SandboxFailureKind = 'timeout' | 'trap' | 'memory-limit' | 'crashed' | 'overloaded' | 'closed';

export type SandboxCallResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly kind: SandboxFailureKind; readonly message: string };

interface PendingCall {
  readonly request: CallRequest;
  readonly resolve: (result: SandboxCallResult) => void;
}

/** Calls beyond this many waiting are answered `overloaded` at once instead of queueing. */
const MAX_WAITING_CALLS = 1024;

/**
 * One plugin in one worker thread, one call at a time (OC-POLICY-4011). Each call gets a deadline;
 * past it the worker is terminated (the only way to stop running wasm in V8) and a fresh one is
 * started from the already compiled modules, so the next call is served again. A worker that dies
 * (out of JS heap, a crash) is replaced the same way.
 */
export class PluginSandbox {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private inFlight: (PendingCall & { timer: NodeJS.Timeout }) | undefined;
  private readonly waiting: PendingCall[] = [];
  private nextCallId = 1;
  private closed = false;
  private dispatching = false;
  private restarts = 0;

  private constructor(
    private readonly plugin: LoadedPlugin,
    private readonly limits: PolicyPluginConfig['limits'],
    private readonly workerData: SandboxWorkerData,
  ) {}

  /** Starts the worker and instantiates the plugin; refuses (throws) if instantiation fails. */
  static async start(plugin: LoadedPlugin, config: PolicyPluginConfig): Promise<PluginSandbox> {
    const sandbox = new PluginSandbox(plugin, config.limits, {
      bindingsSource: plugin.bindingsSource,
      coreModules: plugin.coreModules,
      exportName: plugin.exportName,
      grants: { clocks: config.grants.clocks, random: config.grants.random },
      memoryLimitBytes: config.limits.memory_bytes,
    });
    try {
      await sandbox.spawn();
    } catch (error) {
      await sandbox.close();
      throw new PolicyPluginLoadError(plugin.id, 'instantiate', (error as Error).message);
    }
    return sandbox;
  }

  /** Worker restarts since start (after timeouts and crashes). */
  get restartCount(): number {
    return this.restarts;
  }

  call(fn: PolicyFunction, snapshot: unknown): Promise<SandboxCallResult> {
    if (this.closed) return Promise.resolve({ ok: false, kind: 'closed', message: 'the policy host is closed' });
    if (this.waiting.length >= MAX_WAITING_CALLS) {
      return Promise.resolve({ ok: false, kind: 'overloaded', message: `${MAX_WAITING_CALLS} calls already waiting` });
    }
    return new Promise((resolve) => {
      this.waiting.push({ request: { callId: this.nextCallId++, fn, snapshot }, resolve });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.finishInFlight({ ok: false, kind: 'closed', message: 'the policy host is closed' });
    for (const call of this.waiting.splice(0)) call.resolve({ ok: false, kind: 'closed', message: 'the policy host is closed' });
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private spawn(): Promise<void> {
    const worker = startWorker('sandbox-worker', {
      workerData: this.workerData,
      // Bounds the JS side (jco bindings' objects); wasm memory is bounded by the rewritten limits.
      resourceLimits: { maxOldGenerationSizeMb: this.limits.js_heap_mb, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
      // The bindings run JavaScript in this thread: give them an empty environment, not ours.
      env: {},
    });
    this.worker = worker;
    let started = false;
    this.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          started = true;
          resolve();
        } else if (message.type === 'load-error') {
          reject(new Error(message.message));
        } else {
          this.onResult(worker, message);
        }
      });
      worker.on('error', (error: Error & { code?: string }) => {
        reject(error);
        const kind = error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory-limit' : 'crashed';
        // Only a worker that once served is replaced; one that cannot start would loop.
        if (started) this.onWorkerLost(worker, kind, error.message);
      });
      worker.on('exit', (code) => {
        reject(new Error(`the plugin worker exited with code ${code} during start-up`));
        if (started) this.onWorkerLost(worker, 'crashed', `the plugin worker exited with code ${code}`);
      });
    });
    this.ready.then(
      () => this.pump(),
      () => undefined,
    );
    return this.ready;
  }

  private pump(): void {
    if (this.closed || this.inFlight !== undefined || this.dispatching || this.worker === undefined) return;
    const next = this.waiting.shift();
    if (next === undefined) return;
    const worker = this.worker;
    this.dispatching = true;
    // Wait for a (re)started worker before the deadline starts: the bound is on the call itself.
    void this.ready?.then(
      () => {
        this.dispatching = false;
        if (this.worker !== worker || this.closed) {
          this.waiting.unshift(next);
          this.pump();
          return;
        }
        const timer = setTimeout(() => this.onTimeout(worker), this.limits.call_timeout_ms);
        this.inFlight = { ...next, timer };
        worker.postMessage(next.request);
      },
      () => {
        this.dispatching = false;
        next.resolve({ ok: false, kind: 'crashed', message: 'the plugin worker failed to start' });
        this.pump();
      },
    );
  }

  private onResult(worker: Worker, message: Extract<WorkerMessage, { callId: number }>): void {
    if (worker !== this.worker || this.inFlight?.request.callId !== message.callId) return;
    if (message.type === 'result') {
      this.finishInFlight({ ok: true, value: message.value });
      this.pump();
      return;
    }
    this.finishInFlight({ ok: false, kind: message.kind, message: message.message });
    // A memory overrun leaves the instance in an unknown state: start from a fresh one.
    if (message.kind === 'memory-limit') this.restart(worker);
    else this.pump();
  }

  private onTimeout(worker: Worker): void {
    if (worker !== this.worker) return;
    this.finishInFlight({
      ok: false,
      kind: 'timeout',
      message: `call exceeded ${this.limits.call_timeout_ms} ms; plugin worker terminated`,
    });
    this.restart(worker);
  }

  private onWorkerLost(worker: Worker, kind: SandboxFailureKind, detail: string): void {
    if (worker !== this.worker || this.closed) return;
    this.finishInFlight({ ok: false, kind, message: detail });
    this.restart(worker);
  }

  private restart(worker: Worker): void {
    if (this.closed || worker !== this.worker) return;
    this.worker = undefined;
    this.restarts += 1;
    worker.removeAllListeners();
    void worker.terminate();
    this.spawn().catch(() => {
      // The plugin started once with these exact modules; failing now means the host is in
      // trouble. Answer what is waiting so callers fall back instead of hanging.
      for (const call of this.waiting.splice(0)) call.resolve({ ok: false, kind: 'crashed', message: 'the plugin worker failed to restart' });
    });
  }

  private finishInFlight(result: SandboxCallResult): void {
    const call = this.inFlight;
    if (call === undefined) return;
    this.inFlight = undefined;
    clearTimeout(call.timer);
    call.resolve(result);
  }
}
