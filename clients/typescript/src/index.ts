export { OrchApiError, OrchClient, OPERATIONS, type OrchClientOptions } from './orch-client';
export { parseSse, type RawSseFrame } from './sse';
export type * from './types';
