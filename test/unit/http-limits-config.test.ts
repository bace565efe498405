import { ConfigError, GATEWAY_DEFAULTS, parseConfig, STREAM_DEFAULTS } from '../../core/config';

const pool = { id: 'p1', engine: 'llamacpp', model: 'mock:x', devices: [0], engine_runtime: { kind: 'mock' } };

test('issue 13: the gateway limits and the SSE buffer bound have defaults, also when their sections are partly given', () => {
  const expected = { body_limit_bytes: 1_048_576, max_concurrent_requests: 4_096, max_connections: 8_192, headers_timeout_ms: 10_000, request_timeout_ms: 30_000 };
  expect(parseConfig({ pools: [pool] }).config.gateway).toEqual(expect.objectContaining(expected));
  expect(parseConfig({ pools: [pool] }).config.streams.max_buffered_bytes).toBe(STREAM_DEFAULTS.maxBufferedBytes);
  const partial = parseConfig({ gateway: { port: 9000 }, streams: { linger_ms: 5 }, pools: [pool] }).config;
  expect(partial.gateway).toEqual(expect.objectContaining({ ...expected, port: 9000 }));
  expect(partial.streams.max_buffered_bytes).toBe(1_048_576);
  expect(GATEWAY_DEFAULTS.bodyLimitBytes).toBe(expected.body_limit_bytes);
});

test('issue 13: the headers timeout may not exceed the request timeout; the SSE bound is at least 64 KiB', () => {
  expect(() => parseConfig({ gateway: { headers_timeout_ms: 40_000 }, pools: [pool] })).toThrow(/gateway\.headers_timeout_ms: must not exceed gateway\.request_timeout_ms/);
  expect(() => parseConfig({ streams: { max_buffered_bytes: 1_024 }, pools: [pool] })).toThrow(ConfigError);
  expect(parseConfig({ gateway: { headers_timeout_ms: 1_000, request_timeout_ms: 2_000 }, pools: [pool] }).config.gateway.headers_timeout_ms).toBe(1_000);
});
