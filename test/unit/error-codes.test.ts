import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, ERROR_TRAITS } from '../../core/errors';

const doc = readFileSync(join(__dirname, '..', '..', '.specs', 'errors.md'), 'utf8');

test('ORCH-2006 OC-CTRL-2030: the nine contract codes are all in the closed set', () => {
  const contract = ['ADMISSION_REJECT', 'QUEUE_FULL_DROP_LRU', 'INVALID_PARAMS', 'POOL_UNREADY', 'POOL_UNAVAILABLE', 'REPLICA_EXHAUSTED', 'DECODE_TIMEOUT', 'WORKER_RESET', 'INTERNAL'];
  expect(ERROR_CODES).toEqual(expect.arrayContaining(contract));
});

test('every code in core/errors.ts is documented in .specs/errors.md with its HTTP status, and nothing else is', () => {
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((match) => [match[1], Number(match[2])]);
  expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(ERROR_CODES.map((code) => [code, ERROR_TRAITS[code].httpStatus])));
});
