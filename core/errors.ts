/**
 * The closed set of error codes (ORCH-2006, OC-CTRL-2030), plus the three the [R] refinement added
 * (DEADLINE_UNMET, MODEL_DEPRECATED, UNTRUSTED_ARTIFACT) and llama-orch's two auth codes. Codes are append-only; a retired code is
 * never reused. Every code is listed in .specs/errors.md, and a test keeps the two in step.
 */
export const ErrorCode = {
  ADMISSION_REJECT: 'ADMISSION_REJECT',
  QUEUE_FULL_DROP_LRU: 'QUEUE_FULL_DROP_LRU',
  INVALID_PARAMS: 'INVALID_PARAMS',
  POOL_UNREADY: 'POOL_UNREADY',
  POOL_UNAVAILABLE: 'POOL_UNAVAILABLE',
  REPLICA_EXHAUSTED: 'REPLICA_EXHAUSTED',
  DECODE_TIMEOUT: 'DECODE_TIMEOUT',
  WORKER_RESET: 'WORKER_RESET',
  INTERNAL: 'INTERNAL',
  DEADLINE_UNMET: 'DEADLINE_UNMET',
  MODEL_DEPRECATED: 'MODEL_DEPRECATED',
  UNTRUSTED_ARTIFACT: 'UNTRUSTED_ARTIFACT',
  /** No API key, or one that is not known (ORCH-3035): 401. llama-orch's own; the contract declares a bare 401. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A known key without the scope the route needs (data or control plane): 403. */
  FORBIDDEN: 'FORBIDDEN',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_CODES = Object.values(ErrorCode);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

interface ErrorCodeTraits {
  readonly httpStatus: number;
  readonly retriable: boolean;
  /** Default message, as the contract's pact uses it. */
  readonly message: string;
}

/** The one table from code to HTTP status and retriability (OC-CTRL-2030, the CDC pact's mapping). */
export const ERROR_TRAITS: Readonly<Record<ErrorCode, ErrorCodeTraits>> = {
  INVALID_PARAMS: { httpStatus: 400, retriable: false, message: 'bad request' },
  DEADLINE_UNMET: { httpStatus: 400, retriable: false, message: 'deadline cannot be met' },
  MODEL_DEPRECATED: { httpStatus: 403, retriable: false, message: 'model deprecated' },
  ADMISSION_REJECT: { httpStatus: 429, retriable: true, message: 'reject policy' },
  QUEUE_FULL_DROP_LRU: { httpStatus: 429, retriable: true, message: 'queue full' },
  POOL_UNREADY: { httpStatus: 503, retriable: true, message: 'pool not ready' },
  POOL_UNAVAILABLE: { httpStatus: 503, retriable: true, message: 'unavailable' },
  REPLICA_EXHAUSTED: { httpStatus: 503, retriable: true, message: 'exhausted' },
  UNTRUSTED_ARTIFACT: { httpStatus: 503, retriable: false, message: 'untrusted artifact' },
  DECODE_TIMEOUT: { httpStatus: 500, retriable: true, message: 'timeout' },
  WORKER_RESET: { httpStatus: 500, retriable: true, message: 'reset' },
  INTERNAL: { httpStatus: 500, retriable: false, message: 'internal' },
  UNAUTHENTICATED: { httpStatus: 401, retriable: false, message: 'missing or unknown API key' },
  FORBIDDEN: { httpStatus: 403, retriable: false, message: 'the API key lacks the scope this route needs' },
};

export interface OrchErrorDetails {
  readonly engine?: string | undefined;
  readonly poolId?: string | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly policyLabel?: string | undefined;
  /** The named resource (task, pool, session) does not exist: answered 404 with this code's envelope. */
  readonly notFound?: boolean | undefined;
  /** The request body is over `gateway.body_limit_bytes`: answered 413 with this code's envelope. */
  readonly tooLarge?: boolean | undefined;
  /**
   * The code OpenAI's own API gives this failure, answered on the OpenAI-compatible routes in place of the
   * contract's (whose status still applies): clients and frameworks branch on it.
   */
  readonly openAiCode?: 'context_length_exceeded' | undefined;
}

/**
 * An error that carries a contract code. Match on `.code`, never on `instanceof`: Jest and the
 * workflow sandbox are separate realms.
 */
export class OrchError extends Error {
  readonly code: ErrorCode;
  readonly details: OrchErrorDetails;

  constructor(code: ErrorCode, message: string = ERROR_TRAITS[code].message, details: OrchErrorDetails = {}) {
    super(message);
    this.name = 'OrchError';
    this.code = code;
    this.details = details;
  }
}

export function hasErrorCode(value: unknown): value is { code: ErrorCode; message: string } {
  return typeof value === 'object' && value !== null && isErrorCode((value as { code?: unknown }).code);
}
