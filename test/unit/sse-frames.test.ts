import { encodeSseFrame, toSseFrame } from '../../api/sse-frames';

test('ORCH-2002: frames have the spec payloads and the id/event/data wire form', () => {
  expect(encodeSseFrame(toSseFrame(0, { type: 'started', queuePosition: 3, predictedStartMs: 420 }))).toBe(
    'id: 0\nevent: started\ndata: {"queue_position":3,"predicted_start_ms":420}\n\n',
  );
  expect(encodeSseFrame(toSseFrame(1, { type: 'token', text: 'Hello', index: 0 }))).toBe('id: 1\nevent: token\ndata: {"t":"Hello","i":0}\n\n');
  expect(encodeSseFrame(toSseFrame(2, { type: 'end', tokensOut: 64, decodeMs: 2300 }))).toBe('id: 2\nevent: end\ndata: {"tokens_out":64,"decode_ms":2300}\n\n');
  expect(toSseFrame(3, { type: 'error', code: 'DECODE_TIMEOUT', message: 'timeout', engine: 'llamacpp' }).data).toBe(
    '{"code":"DECODE_TIMEOUT","message":"timeout","engine":"llamacpp"}',
  );
});

test('token text with newlines and quotes stays on one data line', () => {
  const wire = encodeSseFrame(toSseFrame(4, { type: 'token', text: 'a\n"b"\r\n', index: 1 }));
  expect(wire.split('\n')).toHaveLength(5);
  expect(wire).toContain('data: {"t":"a\\n\\"b\\"\\r\\n","i":1}');
});
