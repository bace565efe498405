import { parseArgs } from 'node:util';
import { nonNegativeInt, runDoubleCli, serveUntilSignalled } from '../test-double-cli';
import { TGI_DOUBLE_VERSION, startTgiDouble } from './tgi-double';

/**
 * CLI for the TGI test double (a stand-in for a TGI server outside the pool worker, e.g. an `external` pool):
 *   node dist/gpu-workers/engines/tgi-double/tgi-double-main.js --port 0 --max-concurrent-requests 8
 * Prints one JSON line to stdout once listening ({"event":"listening","url":…}); everything else goes to stderr.
 */
const USAGE =
  'usage: tgi-double-main [--port N] [--max-concurrent-requests N] [--max-batch-size N] [--max-total-tokens N] ' +
  '[--max-input-tokens N] [--ttft-ms N] [--inter-token-ms N] [--emit-eos] [--model-id ID]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'max-concurrent-requests': { type: 'string' },
      'max-batch-size': { type: 'string' },
      'max-total-tokens': { type: 'string' },
      'max-input-tokens': { type: 'string' },
      'ttft-ms': { type: 'string' },
      'inter-token-ms': { type: 'string' },
      'emit-eos': { type: 'boolean' },
      'model-id': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stderr.write(`${USAGE}\n`);
    return;
  }
  const maxConcurrentRequests = nonNegativeInt('max-concurrent-requests', values['max-concurrent-requests']);
  if (maxConcurrentRequests === 0) throw new Error('--max-concurrent-requests must be at least 1');
  const double = await startTgiDouble({
    port: nonNegativeInt('port', values.port),
    maxConcurrentRequests,
    maxBatchSize: nonNegativeInt('max-batch-size', values['max-batch-size']),
    maxTotalTokens: nonNegativeInt('max-total-tokens', values['max-total-tokens']),
    maxInputTokens: nonNegativeInt('max-input-tokens', values['max-input-tokens']),
    ttftMs: nonNegativeInt('ttft-ms', values['ttft-ms']),
    interTokenMs: nonNegativeInt('inter-token-ms', values['inter-token-ms']),
    emitEos: values['emit-eos'],
    modelId: values['model-id'],
  });
  serveUntilSignalled(
    'TGI test double',
    double,
    `*** TGI TEST DOUBLE (version "${TGI_DOUBLE_VERSION}") at ${double.url}: speaks TGI's native API with synthetic ` +
      'word pieces; NOT Text Generation Inference and NOT a model. For tests of the orchestrator only. ***',
  );
}

runDoubleCli('TGI test double', USAGE, main);
