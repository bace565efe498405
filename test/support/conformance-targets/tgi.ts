import { TGI_DOUBLE_VERSION } from '../../../gpu-workers/engines/tgi-double/tgi-double';
import type { ConformanceTarget } from '../engine-conformance';

/**
 * TGI through its test double (no TGI server installs from a registry): the suite proves the adapter and the double
 * agree, and that health says a double serves. Nothing here is verified against a real TGI (.specs/engines/tgi.md).
 */
export const tgiDoubleTarget: ConformanceTarget = {
  name: 'TGI: the in-process test double (unverified against a real TGI)',
  engine: 'tgi',
  provisionTimeoutMs: 30_000,
  prepare: () =>
    Promise.resolve({
      // `slots` is the double's max_concurrent_requests, which the adapter reports as the engine's slots.
      custom: { engine: 'tgi', engineRuntime: { kind: 'mock', slots: 2, ttft_ms: 5, inter_token_ms: 10 } },
      engineVersion: TGI_DOUBLE_VERSION,
      taskCtx: 2048,
      longTaskTokens: 1900,
      testDouble: true,
    }),
};
