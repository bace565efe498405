/** The schema lives in core/ so the pool config can embed it; policy/ re-exports it for plugin authors. */
export * from '../core/policy-plugin-config';
