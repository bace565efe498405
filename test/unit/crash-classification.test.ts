import { classifyEngineExit } from '../../gpu-workers/pool-manager/crash-classification';
import type { EngineExit } from '../../gpu-workers/pool-manager/crash-classification';

const GIB = 2 ** 30;
const exit = (overrides: Partial<EngineExit>): EngineExit => ({ exitCode: 1, signal: null, output: '', hostFreeBytes: 8 * GIB, hostTotalBytes: 16 * GIB, ...overrides });

test.each([
  ['ggml_backend_cuda_buffer_type_alloc_buffer: allocating 4096.00 MiB on device 0: cudaMalloc failed: out of memory', 'vram_oom'],
  ['CUDA error: out of memory\n  current device: 0', 'vram_oom'],
  ['NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus', 'driver_reset'],
  ['CUDA error: unspecified launch failure', 'driver_reset'],
  ["terminate called after throwing an instance of 'std::bad_alloc'", 'host_oom'],
  ['error: invalid argument: --bogus', 'engine_exit'],
] as const)('ORCH-3039 ORCH-3053: %j is classified as %s', (output, kind) => {
  const failure = classifyEngineExit(exit({ output }));
  expect(failure.kind).toBe(kind);
  expect(failure.code).toBe('WORKER_RESET');
});

test('ORCH-3039: a SIGKILL while host memory is nearly exhausted is the kernel OOM killer (host OOM), otherwise a plain exit', () => {
  expect(classifyEngineExit(exit({ exitCode: null, signal: 'SIGKILL', hostFreeBytes: 0.01 * GIB })).kind).toBe('host_oom');
  expect(classifyEngineExit(exit({ exitCode: null, signal: 'SIGKILL' })).kind).toBe('engine_exit');
});

test('the message names how the engine died and its last output lines', () => {
  const failure = classifyEngineExit(exit({ exitCode: 1, output: 'loading\n\nerror: invalid argument: --bogus\n' }));
  expect(failure.message).toBe('llama-server exited with code 1: engine process ended — loading | error: invalid argument: --bogus');
});
