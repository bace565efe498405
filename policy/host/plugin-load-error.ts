/** Why a plugin was refused at start-up. Matched on `reason`, never with `instanceof`. */
export type PluginLoadFailure =
  | 'unreadable'
  | 'integrity'
  | 'not-a-component'
  | 'abi-mismatch'
  | 'forbidden-import'
  | 'memory'
  | 'instantiate';

/**
 * A plugin refused at start-up: the pool does not start, and the message says which plugin, which
 * file and what to do. A bad plugin never gets as far as a decision.
 */
export class PolicyPluginLoadError extends Error {
  override readonly name = 'PolicyPluginLoadError';
  readonly code = 'POLICY_PLUGIN_REFUSED';

  constructor(
    readonly pluginId: string,
    readonly reason: PluginLoadFailure,
    message: string,
  ) {
    super(`policy plugin "${pluginId}" refused (${reason}): ${message}`);
  }
}
