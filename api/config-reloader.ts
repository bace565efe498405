import type { Logger } from 'pino';
import type { OrchConfig } from '../core/config';
import { loadConfigFile } from '../core/config-file';
import { ErrorCode, OrchError } from '../core/errors';
import type { TenantQuotas } from './admission/tenant-quota';
import { loadApiKeys } from './auth/api-keys';
import type { Authenticator } from './auth/authenticator';
import { liveChanges, restartRequiredBy } from './config-diff';
import type { SloTracker } from './observability/slo-tracker';

export interface ConfigReloaderOptions {
  /** The file this gateway was started from; without one there is nothing to reload. */
  readonly path?: string | undefined;
  readonly configDir: string;
  readonly quotas: Pick<TenantQuotas, 'reconfigure'>;
  readonly auth: Pick<Authenticator, 'replaceKeys'>;
  readonly slo: Pick<SloTracker, 'reconfigure'>;
  readonly logger: Logger;
}

export interface ConfigChange {
  /** The live fields that changed (e.g. `pools[0].queue`, `quotas`, `auth.keys`). */
  readonly changed: readonly string[];
  /** Whether `POST /v1/config/revert` has a previous config to go back to. */
  readonly revertible: boolean;
}

/**
 * ORCH-3031 for the gateway's config: a reload re-reads the file, validates all of it, refuses any change that
 * needs a restart (naming the field), builds everything new first (the key store may fail) and then swaps it in
 * one synchronous step, so no request sees half of it. The previous config is kept; revert swaps it back. Each
 * gateway reloads its own file.
 */
export class ConfigReloader {
  private previous: OrchConfig | undefined;

  constructor(
    private active: OrchConfig,
    private readonly options: ConfigReloaderOptions,
  ) {}

  get config(): OrchConfig {
    return this.active;
  }

  reload(): ConfigChange {
    const { path } = this.options;
    if (!path) throw new OrchError(ErrorCode.INVALID_PARAMS, 'this gateway was started without a config file; nothing to reload');
    let next: OrchConfig;
    try {
      next = loadConfigFile(path).config;
    } catch (error) {
      throw new OrchError(ErrorCode.INVALID_PARAMS, `config not reloaded: ${error instanceof Error ? error.message : String(error)}`);
    }
    return this.swap(next, 'reloaded');
  }

  revert(): ConfigChange {
    const previous = this.previous;
    if (!previous) throw new OrchError(ErrorCode.INVALID_PARAMS, 'no previous config to revert to');
    return this.swap(previous, 'reverted');
  }

  private swap(next: OrchConfig, verb: 'reloaded' | 'reverted'): ConfigChange {
    const restart = restartRequiredBy(this.active, next);
    if (restart !== null) throw new OrchError(ErrorCode.INVALID_PARAMS, `config not ${verb}: ${restart} changed, which needs a restart of the gateway`);
    let keys;
    try {
      keys = loadApiKeys(next, { configDir: this.options.configDir });
    } catch (error) {
      throw new OrchError(ErrorCode.INVALID_PARAMS, `config not ${verb}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const changed = liveChanges(this.active, next);
    // One synchronous step: no request runs between these lines.
    this.previous = this.active;
    this.active = next;
    this.options.quotas.reconfigure(next.quotas);
    this.options.auth.replaceKeys(keys);
    this.options.slo.reconfigure(next.slo);
    this.options.logger.warn({ changed, api_keys: keys.size }, `config ${verb}`);
    return { changed, revertible: true };
  }
}
