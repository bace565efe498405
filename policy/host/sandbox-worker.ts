/**
 * Runs one policy plugin inside a worker thread (OC-POLICY-4010/4011). The host terminates this
 * thread when a call overruns its CPU deadline, which is the only way to stop running wasm in V8
 * (no fuel, no epochs). The plugin gets exactly the imports its grants name, built here as explicit
 * stubs; there is no WASI shim, so no filesystem or socket interface exists to be reached.
 * Self-contained on purpose (see worker-script.ts).
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { CallRequest, PluginGrants, SandboxWorkerData, WorkerMessage } from './sandbox-protocol';
import type { WasmInstance, WasmMemory, WasmModule, WebAssemblyApi } from './wasm-types';

const WA = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

type ImportObject = Record<string, Record<string, unknown>>;
type Instantiate = (
  getCoreModule: (name: string) => WasmModule,
  imports: ImportObject,
  instantiateCore: (module: WasmModule, imports?: ImportObject) => WasmInstance,
) => Record<string, unknown>;

/** Random bytes per call are bounded so a plugin cannot use the grant to allocate host memory. */
const MAX_RANDOM_BYTES = 64 * 1024;

function grantedImports(grants: PluginGrants): ImportObject {
  const imports: ImportObject = {};
  if (grants.clocks) {
    imports['wasi:clocks/wall-clock'] = {
      now: () => {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    };
    imports['wasi:clocks/monotonic-clock'] = {
      now: () => process.hrtime.bigint(),
      resolution: () => 1n,
    };
  }
  if (grants.random) {
    const bytes = (length: bigint): Uint8Array => {
      if (length > BigInt(MAX_RANDOM_BYTES)) throw new RangeError(`random bytes are limited to ${MAX_RANDOM_BYTES} per call`);
      return new Uint8Array(randomBytes(Number(length)));
    };
    const u64 = (): bigint => randomBytes(8).readBigUInt64LE();
    imports['wasi:random/random'] = { getRandomBytes: bytes, getRandomU64: u64 };
    imports['wasi:random/insecure'] = { getInsecureRandomBytes: bytes, getInsecureRandomU64: u64 };
    imports['wasi:random/insecure-seed'] = { insecureSeed: () => [u64(), u64()] };
  }
  return imports;
}

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

async function main(data: SandboxWorkerData): Promise<void> {
  const memories: WasmMemory[] = [];
  const memoryBytes = (): number => memories.reduce((total, memory) => total + memory.buffer.byteLength, 0);
  let policy: Record<string, unknown>;
  try {
    const url = `data:text/javascript;base64,${Buffer.from(data.bindingsSource).toString('base64')}`;
    const bindings = (await import(url)) as { instantiate: Instantiate };
    const exportsByName = bindings.instantiate(
      (name) => {
        const module = data.coreModules[name];
        if (module === undefined) throw new Error(`bindings asked for unknown core module ${name}`);
        return module;
      },
      grantedImports(data.grants),
      (module, imports) => {
        const instance = new WA.Instance(module, imports);
        // Keep every exported memory, so the size check below sees all of the plugin's memory.
        for (const value of Object.values(instance.exports)) {
          if (value instanceof WA.Memory) memories.push(value);
        }
        return instance;
      },
    );
    const exported = exportsByName[data.exportName];
    if (typeof exported !== 'object' || exported === null) throw new Error(`the component does not export ${data.exportName}`);
    policy = exported as Record<string, unknown>;
  } catch (error) {
    post({ type: 'load-error', message: errorMessage(error) });
    return;
  }

  parentPort?.on('message', (request: CallRequest) => {
    const fn = policy[request.fn] as ((snapshot: unknown) => unknown) | undefined;
    try {
      if (typeof fn !== 'function') throw new Error(`the plugin has no ${request.fn} function`);
      const value = fn(request.snapshot);
      const bytes = memoryBytes();
      if (bytes > data.memoryLimitBytes) {
        post({ type: 'failure', callId: request.callId, kind: 'memory-limit', message: `plugin memory ${bytes} B is over ${data.memoryLimitBytes} B`, memoryBytes: bytes });
        return;
      }
      post({ type: 'result', callId: request.callId, value, memoryBytes: bytes });
    } catch (error) {
      const bytes = memoryBytes();
      // A guest whose memory.grow failed at the cap usually traps next; that is a memory overrun,
      // not a bug in the plugin's logic, and the outcome says so.
      const atCap = bytes + 64 * 1024 > data.memoryLimitBytes;
      post({ type: 'failure', callId: request.callId, kind: atCap ? 'memory-limit' : 'trap', message: errorMessage(error), memoryBytes: bytes });
    }
  });
  post({ type: 'ready' });
}

void main(workerData as SandboxWorkerData);
