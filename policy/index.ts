/**
 * Policy plugins (ORCH-3048, OC-POLICY-*): the one module the gateway imports.
 *
 *   const policy = await createPolicyHost(pool.policy_plugin, logger, { baseDir: configDir });
 *   const { decision, decidedBy } = await policy.admit(snapshot);
 *
 * See docs/policy-plugins.md (guide) and .specs/policy-abi.md (ABI).
 */
export { createPolicyHost } from './host/policy-host';
export type {
  AdmitOutcome,
  DecidedBy,
  FallbackReason,
  PlaceOutcome,
  PolicyHost,
  PolicyHostOptions,
  PolicyLogger,
  PolicyOutcome,
} from './host/policy-host';
export { PolicyPluginLoadError } from './host/plugin-load-error';
export type { PluginLoadFailure } from './host/plugin-load-error';
export { PolicyPluginConfigSchema } from './config';
export type { PolicyPluginConfig, PolicyPluginConfigInput } from './config';
export { builtinPolicy } from './builtin/builtin-policy';
export * from './sdk';
