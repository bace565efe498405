import { PolicyPluginConfigSchema } from '../../policy/config';

describe('PolicyPluginConfigSchema', () => {
  it('applies documented defaults: no grants, 25 ms, 16 MiB, breaker 5 / 30 s', () => {
    expect(PolicyPluginConfigSchema.parse({ id: 'cap', version: '1.0.0', path: 'plugins/cap.wasm' })).toEqual({
      id: 'cap',
      version: '1.0.0',
      path: 'plugins/cap.wasm',
      grants: { clocks: false, random: false, filesystem: false, network: false },
      limits: { call_timeout_ms: 25, memory_bytes: 16 * 1024 * 1024, js_heap_mb: 32 },
      breaker: { failure_threshold: 5, cooldown_ms: 30_000 },
    });
  });

  it('is strict: a misspelt key is an error, not a silent default', () => {
    const result = PolicyPluginConfigSchema.safeParse({ id: 'cap', version: '1', path: 'x.wasm', limits: { call_timeout: 5 } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['call_timeout'], path: ['limits'] });
  });

  it('OC-POLICY-4010: refuses filesystem and network grants with a message saying why', () => {
    const result = PolicyPluginConfigSchema.safeParse({ id: 'cap', version: '1', path: 'x.wasm', grants: { network: true } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe(
      'network cannot be granted in policy ABI 1.x: a policy decides from its snapshot alone (see .specs/policy-abi.md)',
    );
  });

  it('bounds limits and validates id and sha256', () => {
    expect(PolicyPluginConfigSchema.safeParse({ id: 'cap', version: '1', path: 'x', limits: { call_timeout_ms: 0 } }).success).toBe(false);
    expect(PolicyPluginConfigSchema.safeParse({ id: 'Cap Plugin', version: '1', path: 'x' }).success).toBe(false);
    expect(PolicyPluginConfigSchema.safeParse({ id: 'cap', version: '1', path: 'x', sha256: 'abc' }).success).toBe(false);
  });
});
