import { RestartPolicy } from '../../gpu-workers/pool-manager/restart-policy';

const settings = { initialBackoffMs: 1_000, maxBackoffMs: 8_000, breakerFailures: 5, breakerWindowMs: 60_000, breakerCooldownMs: 300_000 };

test('OC-POOL-3011: backoff doubles with each consecutive failure, capped at max_backoff_ms', () => {
  const policy = new RestartPolicy({ ...settings, breakerFailures: 100 });
  const delays = [0, 1, 2, 3, 4, 5].map((step) => policy.recordFailure(step * 100));
  expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000].map((delayMs) => ({ action: 'restart', delayMs })));
});

test('OC-POOL-3011 ORCH-3053: the breaker opens at the configured failures within the window, then allows one trial per cooldown', () => {
  const policy = new RestartPolicy(settings);
  for (let failure = 0; failure < 4; failure += 1) expect(policy.recordFailure(failure * 1_000).action).toBe('restart');
  expect(policy.recordFailure(4_000)).toEqual({ action: 'breaker-open', delayMs: 300_000 });
  // The trial start after the cooldown fails too: open again at once, no backoff ramp.
  expect(policy.recordFailure(304_000)).toEqual({ action: 'breaker-open', delayMs: 300_000 });
});

test('failures spread wider than the window never open the breaker', () => {
  const policy = new RestartPolicy({ ...settings, maxBackoffMs: 1_000 });
  for (let failure = 0; failure < 20; failure += 1) expect(policy.recordFailure(failure * 15_000).action).toBe('restart');
});

test('a trial start that reaches Ready closes the breaker and resets the backoff', () => {
  const policy = new RestartPolicy(settings);
  for (let failure = 0; failure < 5; failure += 1) policy.recordFailure(failure);
  policy.recordReady(400_000);
  expect(policy.recordFailure(401_000)).toEqual({ action: 'restart', delayMs: 1_000 });
});

test('a replica Ready for a whole window starts its backoff over; a short Ready period does not', () => {
  const policy = new RestartPolicy({ ...settings, breakerFailures: 100 });
  policy.recordFailure(0);
  policy.recordFailure(1);
  policy.recordReady(10);
  expect(policy.recordFailure(20)).toEqual({ action: 'restart', delayMs: 4_000 });
  policy.recordReady(30);
  expect(policy.recordFailure(30 + 60_000)).toEqual({ action: 'restart', delayMs: 1_000 });
});
