import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, OrchError } from '../../core/errors';
import { TENANT_PATTERN, type ApiKeyScope } from '../../core/security-config';
import type { ApiKeyStore, Principal } from './api-keys';

const CLIENT_ID_HEADER = 'x-client-id';
const API_KEY_HEADER = 'x-api-key';
/** Served to anyone: the API description (ORCH-3044). /metrics and /internal/* are outside /v1. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/v1/openapi.json']);
const CONTROL_PLANE_PREFIXES = ['/v1/pools', '/v1/replicasets', '/v1/config'];

/**
 * AuthN/AuthZ for both planes (ORCH-3035, OC-CTRL-2040). Every /v1 route but the API description needs a
 * known key (else 401 UNAUTHENTICATED) with the scope of its plane (else 403 FORBIDDEN); the key's tenant
 * is the client identity from then on. Keys are looked up by digest and never logged (OC-CTRL-2041).
 */
export class Authenticator {
  private readonly principals = new WeakMap<FastifyRequest, Principal>();

  constructor(
    private readonly mode: 'enabled' | 'disabled',
    private store: ApiKeyStore,
  ) {}

  /** A config hot reload (api/config-reloader.ts): the next request is checked against the new keys. */
  replaceKeys(store: ApiKeyStore): void {
    this.store = store;
  }

  get enabled(): boolean {
    return this.mode === 'enabled';
  }

  register(app: FastifyInstance): void {
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        this.authenticate(request);
        done();
      } catch (error) {
        done(error as OrchError);
      }
    });
  }

  private authenticate(request: FastifyRequest): void {
    if (!this.enabled) return;
    const path = request.url.split('?', 1)[0] ?? '';
    if (!path.startsWith('/v1/') || PUBLIC_PATHS.has(path)) return;
    const presented = presentedKey(request);
    const principal = presented === undefined ? undefined : this.store.lookup(presented);
    if (!principal) {
      throw new OrchError(ErrorCode.UNAUTHENTICATED, presented === undefined ? 'an API key is required: Authorization: Bearer <key>' : 'unknown API key');
    }
    const scope = scopeOf(path);
    if (!principal.scopes.includes(scope)) {
      throw new OrchError(ErrorCode.FORBIDDEN, `the API key ${principal.keyId} has no ${scope}-plane scope`);
    }
    this.principals.set(request, principal);
  }

  /**
   * The tenant a request acts for: the key's tenant, or with auth disabled the `X-Client-Id` header
   * (default `anonymous`). Tasks and sessions belong to it; quotas and fairness count by it.
   */
  clientIdOf(request: FastifyRequest): string {
    if (this.enabled) {
      const principal = this.principals.get(request);
      // The hook runs before every /v1 route; a missing principal is a wiring bug, not a client error.
      if (!principal) throw new OrchError(ErrorCode.INTERNAL, 'request reached a route without authentication');
      return principal.tenant;
    }
    const header = request.headers[CLIENT_ID_HEADER];
    if (header === undefined) return 'anonymous';
    if (typeof header !== 'string' || !TENANT_PATTERN.test(header)) {
      throw new OrchError(ErrorCode.INVALID_PARAMS, 'X-Client-Id must be 1–64 letters, digits or ._:@-');
    }
    return header;
  }

  principalOf(request: FastifyRequest): Principal | undefined {
    return this.principals.get(request);
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1] ?? '';
  }
  const header = request.headers[API_KEY_HEADER];
  return typeof header === 'string' ? header.trim() : undefined;
}

function scopeOf(path: string): ApiKeyScope {
  return CONTROL_PLANE_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`)) ? 'control' : 'data';
}
