import type { WorkerPart } from '../../core/stream-parts';
import { FramePositions, type SseFrame } from '../../api/sse-frames';
import { TaskStream } from '../../api/task-stream';

const admission = { requestDigest: 'd', poolId: 'p', admission: { queuePosition: 0, predictedStartMs: 0 } };

function newStream(capacity = 100): { stream: TaskStream; frames: SseFrame[]; ended: () => boolean } {
  const stream = new TaskStream('t1', 'llamacpp', capacity, { type: 'started', queuePosition: 2, predictedStartMs: 40 }, admission);
  const frames: SseFrame[] = [];
  let ended = false;
  stream.subscribe(undefined, (frame) => frames.push(frame), () => {
    ended = true;
  });
  return { stream, frames, ended: () => ended };
}

const tokens = (texts: string[], from = 0): WorkerPart[] => texts.map((text, offset) => ({ type: 'token', text, index: from + offset }));
const events = (frames: SseFrame[]) => frames.map((frame) => frame.event);

test('emits started, then tokens in order, then end; ids grow by one', () => {
  const { stream, frames, ended } = newStream();
  expect(stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a', 'b']) })).toBe('accepted');
  expect(stream.acceptChunk({ attempt: 1, seq: 1, parts: [{ type: 'end', tokensOut: 2, decodeMs: 5 }] })).toBe('accepted');
  expect(events(frames)).toEqual(['started', 'token', 'token', 'end']);
  expect(frames.map((frame) => frame.id)).toEqual([0, 1, 2, 3]);
  expect(ended()).toBe(true);
});

test('a chunk delivered twice (same attempt and seq) is emitted once', () => {
  const { stream, frames } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a']) });
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a']) });
  expect(events(frames)).toEqual(['started', 'token']);
});

test('ORCH-3026: after a cancel nothing is emitted and the worker is told to stop', () => {
  const { stream, frames, ended } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a']) });
  stream.cancel();
  expect(stream.acceptChunk({ attempt: 1, seq: 1, parts: tokens(['b'], 1) })).toBe('cancelled');
  expect(events(frames)).toEqual(['started', 'token', 'end']);
  expect(JSON.parse(frames.at(-1)?.data ?? '{}')).toEqual({ tokens_out: 1, decode_ms: expect.any(Number), canceled: true });
  expect(ended()).toBe(true);
});

test('design §6: a retry regenerating the same prefix is deduplicated and the stream continues from the next index', () => {
  const { stream, frames } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a', 'b', 'c']) });
  expect(stream.acceptChunk({ attempt: 2, seq: 0, parts: tokens(['a', 'b', 'c', 'd']) })).toBe('accepted');
  expect(stream.acceptChunk({ attempt: 2, seq: 1, parts: tokens(['e'], 4) })).toBe('accepted');
  expect(frames.filter((frame) => frame.event === 'token').map((frame) => JSON.parse(frame.data) as unknown)).toEqual([
    { t: 'a', i: 0 },
    { t: 'b', i: 1 },
    { t: 'c', i: 2 },
    { t: 'd', i: 3 },
    { t: 'e', i: 4 },
  ]);
});

test('design §6: a retry that diverges ends the stream with WORKER_RESET, never with wrong tokens', () => {
  const { stream, frames } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a', 'b']) });
  expect(stream.acceptChunk({ attempt: 2, seq: 0, parts: tokens(['a', 'X', 'c']) })).toBe('accepted');
  expect(events(frames)).toEqual(['started', 'token', 'token', 'error']);
  expect(JSON.parse(frames.at(-1)?.data ?? '{}')).toEqual(expect.objectContaining({ code: 'WORKER_RESET', engine: 'llamacpp' }));
});

test('a chunk from an older attempt is refused', () => {
  const { stream } = newStream();
  stream.acceptChunk({ attempt: 2, seq: 0, parts: tokens(['a']) });
  expect(stream.acceptChunk({ attempt: 1, seq: 5, parts: tokens(['a']) })).toBe('cancelled');
});

test('Last-Event-ID: a subscriber resumes after a frame id; a point no longer buffered is reported', () => {
  const { stream } = newStream(3);
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a', 'b', 'c', 'd']) });
  const resumed: number[] = [];
  expect(stream.subscribe(2, (frame) => resumed.push(frame.id), () => undefined).complete).toBe(true);
  expect(resumed).toEqual([3, 4]);
  expect(stream.subscribe(0, () => undefined, () => undefined).complete).toBe(false);
});

test('a terminal report after end is ignored', () => {
  const { stream, frames } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: [{ type: 'end', tokensOut: 0, decodeMs: 1 }] });
  stream.finish({ type: 'error', code: 'INTERNAL', message: 'late' });
  expect(events(frames)).toEqual(['started', 'end']);
});

test('ORCH-2002: ids are stream positions — a stream rebuilt from the durable result (no metrics frames) gives every token and the end the id it had live, so Last-Event-ID resumes at the same token on a restarted gateway', () => {
  const { stream, frames } = newStream();
  const dispatched: WorkerPart = { type: 'metrics', values: { phase: 'dispatched', attempt: 1 } };
  stream.acceptChunk({ attempt: 1, seq: 0, parts: [dispatched, ...tokens(['a', 'b'])] });
  stream.acceptChunk({ attempt: 2, seq: 0, parts: [{ ...dispatched, values: { phase: 'dispatched', attempt: 2 } }, ...tokens(['a', 'b', 'c'])] });
  stream.acceptChunk({ attempt: 2, seq: 1, parts: [{ type: 'metrics', values: { phase: 'kv' } }, { type: 'end', tokensOut: 3, decodeMs: 5 }] });
  const rebuilt = new FramePositions();
  const rebuiltIds = [rebuilt.idOf({ type: 'started', queuePosition: 0, predictedStartMs: 0 }), ...['a', 'b', 'c'].map((text, index) => rebuilt.idOf({ type: 'token', text, index })), rebuilt.idOf({ type: 'end', tokensOut: 3, decodeMs: 5 })];
  const liveIds = frames.filter((frame) => frame.event !== 'metrics').map((frame) => frame.id);
  expect(liveIds).toEqual(rebuiltIds);
  expect(liveIds).toEqual([0, 1, 2, 3, 4]);
  // A metrics frame repeats the id before it: resuming after it loses no token.
  expect(frames.map((frame) => [frame.event, frame.id])).toEqual([['started', 0], ['metrics', 0], ['token', 1], ['token', 2], ['metrics', 2], ['token', 3], ['metrics', 3], ['end', 4]]);
});

test('a stream taken over from a dead gateway: a subscriber that resumed after id 3 gets only later frames when the replay from token 0 arrives, then the result completes it', () => {
  const stream = new TaskStream('t1', 'llamacpp', 100, { type: 'started', queuePosition: 0, predictedStartMs: 0 }, admission);
  const resumed: SseFrame[] = [];
  stream.subscribe(3, (frame) => resumed.push(frame), () => undefined);
  stream.acceptChunk({ attempt: 1, seq: 7, parts: tokens(['a', 'b', 'c', 'd', 'e']) });
  expect(resumed.map((frame) => frame.id)).toEqual([4, 5]);
  stream.completeFrom([{ type: 'started', queuePosition: 0, predictedStartMs: 0 }, ...tokens(['a', 'b', 'c', 'd', 'e', 'f']), { type: 'end', tokensOut: 6, decodeMs: 9 }]);
  expect(resumed.map((frame) => [frame.id, frame.event])).toEqual([[4, 'token'], [5, 'token'], [6, 'token'], [7, 'end']]);
  expect(stream.state).toBe('ended');
});

test('a taken-over stream whose result differs from what was emitted ends with an error, never wrong tokens', () => {
  const { stream, frames } = newStream();
  stream.acceptChunk({ attempt: 1, seq: 0, parts: tokens(['a', 'b']) });
  stream.completeFrom([...tokens(['a', 'x', 'c']), { type: 'end', tokensOut: 3, decodeMs: 1 }]);
  expect(events(frames)).toEqual(['started', 'token', 'token', 'error']);
});
