import { parseArgs } from 'node:util';
import { nonNegativeInt, runDoubleCli, serveUntilSignalled } from '../test-double-cli';
import { MOCK_BUILD_INFO, startMockEngine } from './mock-engine';

/**
 * CLI for the mock llama-server:
 *   node dist/gpu-workers/engines/mock-llamacpp/mock-engine-main.js --port 0 --ttft-ms 20 --inter-token-ms 5 --slots 4
 * Prints one JSON line to stdout once listening ({"event":"listening","url":…}); everything else
 * goes to stderr, so a parent process can read stdout line by line.
 */
const USAGE =
  'usage: mock-engine-main [--port N] [--slots N] [--ttft-ms N] [--inter-token-ms N] [--load-delay-ms N] ' +
  '[--ctx-size N] [--default-n-predict N] [--emit-eos] [--model-path PATH] [--alias NAME]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      slots: { type: 'string' },
      'ttft-ms': { type: 'string' },
      'inter-token-ms': { type: 'string' },
      'load-delay-ms': { type: 'string' },
      'ctx-size': { type: 'string' },
      'default-n-predict': { type: 'string' },
      'emit-eos': { type: 'boolean' },
      'model-path': { type: 'string' },
      alias: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stderr.write(`${USAGE}\n`);
    return;
  }
  const slots = nonNegativeInt('slots', values.slots);
  if (slots === 0) throw new Error('--slots must be at least 1');
  const engine = await startMockEngine({
    port: nonNegativeInt('port', values.port),
    slots,
    ttftMs: nonNegativeInt('ttft-ms', values['ttft-ms']),
    interTokenMs: nonNegativeInt('inter-token-ms', values['inter-token-ms']),
    loadDelayMs: nonNegativeInt('load-delay-ms', values['load-delay-ms']),
    contextSize: nonNegativeInt('ctx-size', values['ctx-size']),
    defaultNPredict: nonNegativeInt('default-n-predict', values['default-n-predict']),
    emitEos: values['emit-eos'],
    modelPath: values['model-path'],
    modelAlias: values.alias,
  });
  serveUntilSignalled(
    'mock llama.cpp engine',
    engine,
    `*** MOCK llama.cpp engine (build_info "${MOCK_BUILD_INFO}") at ${engine.url}: synthetic word pieces, ` +
      'NOT a model. For tests and benchmarks of the orchestrator only. ***',
  );
}

runDoubleCli('mock llama.cpp engine', USAGE, main);
