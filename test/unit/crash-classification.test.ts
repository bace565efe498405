import { classifyEngineExit } from '../../gpu-workers/pool-manager/crash-classification';
import type { EngineExit } from '../../gpu-workers/pool-manager/crash-classification';
import { eccIncrease, parseNvidiaSmiEcc } from '../../gpu-workers/pool-manager/gpu-probe';

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

describe('ORCH-3053: ECC errors and driver resets are told apart', () => {
  test.each([
    ['NVRM: Xid (PCI:0000:3b:00): 48, pid=4242, name=llama-server, An uncorrectable double bit error (DBE) has been detected on GPU', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 63, pid=\'<unknown>\', name=<unknown>, Row Remapper: New row marked for remapping', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 64, pid=\'<unknown>\', Row Remapper: row remapping failure', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 92, High single-bit ECC error rate', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 94, pid=4242, Contained: SM (0x1). RST: No, D-RST: No', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 95, pid=4242, Uncontained: LTC TAG (0x2,0x0). RST: Yes, D-RST: No', 'ecc_error'],
    ['CUDA error: uncorrectable ECC error encountered\n  current device: 0, in function ggml_backend_cuda_synchronize', 'ecc_error'],
    ['ggml_cuda_compute_forward: cudaErrorECCUncorrectable', 'ecc_error'],
    ['NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, GPU has fallen off the bus.', 'driver_reset'],
    ['NVRM: Xid (PCI:0000:3b:00): 119, pid=4242, Timeout waiting for RPC from GSP!', 'driver_reset'],
    ['NVRM: Xid (PCI:0000:3b:00): 120, GSP task exception', 'driver_reset'],
    ['NVRM: Xid (PCI:0000:3b:00): 13, Graphics SM Warp Exception', 'driver_reset'],
    ['CUDA driver version is insufficient for CUDA runtime version', 'driver_reset'],
  ] as const)('%j is %s', (output, kind) => {
    const failure = classifyEngineExit(exit({ output }));
    expect(failure.kind).toBe(kind);
    expect(failure.code).toBe('WORKER_RESET');
  });

  test('an uncorrected ECC count the driver reports rising while the engine ran makes a plain death an ECC error, and names the device', () => {
    const failure = classifyEngineExit(exit({ exitCode: null, signal: 'SIGABRT', output: 'CUDA error: unknown error', eccUncorrectedIncrease: new Map([[0, 0], [1, 2]]) }));
    expect(failure.kind).toBe('ecc_error');
    expect(failure.message).toContain('GPU 1: +2');
    // No rise (or nothing readable): the output decides.
    expect(classifyEngineExit(exit({ output: 'CUDA error: unknown error', eccUncorrectedIncrease: new Map([[0, 0]]) })).kind).toBe('driver_reset');
    expect(classifyEngineExit(exit({ output: 'CUDA error: unknown error', eccUncorrectedIncrease: undefined })).kind).toBe('driver_reset');
  });

  test('nvidia-smi ECC counts parse by device ([N/A] left out); the rise is per device read both times', () => {
    const before = parseNvidiaSmiEcc('0, 3\n1, [N/A]\n2, 0\n');
    expect([...before]).toEqual([[0, 3], [2, 0]]);
    expect([...(eccIncrease(before, parseNvidiaSmiEcc('0, 3\n2, 5\n')) ?? [])]).toEqual([[0, 0], [2, 5]]);
    expect(eccIncrease(before, undefined)).toBeUndefined();
    expect(eccIncrease(undefined, before)).toBeUndefined();
  });
});

test('ORCH-3039: a SIGKILL while host memory is nearly exhausted is the kernel OOM killer (host OOM), otherwise a plain exit', () => {
  expect(classifyEngineExit(exit({ exitCode: null, signal: 'SIGKILL', hostFreeBytes: 0.01 * GIB })).kind).toBe('host_oom');
  expect(classifyEngineExit(exit({ exitCode: null, signal: 'SIGKILL' })).kind).toBe('engine_exit');
});

test('the message names how the engine died and its last output lines', () => {
  const failure = classifyEngineExit(exit({ exitCode: 1, output: 'loading\n\nerror: invalid argument: --bogus\n' }));
  expect(failure.message).toBe('llama-server exited with code 1: engine process ended — loading | error: invalid argument: --bogus');
});
