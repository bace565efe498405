/**
 * The slice of the WebAssembly JS API the host uses. tsconfig's `lib` has no DOM and @types/node 20
 * declares no `WebAssembly` global, so the host reads it from `globalThis` through these types
 * rather than declaring a global that a later lib change would collide with.
 */

/** A compiled core module: opaque, and structured-cloneable into a worker thread. */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports?: Record<string, Record<string, unknown>>) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
}

export function webAssembly(): WebAssemblyApi {
  return (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
}
