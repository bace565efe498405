import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { OPENAPI_FILE, renderOpenApiYaml } from '../api/openapi/openapi-document';

/** `npm run openapi`: writes .specs/openapi.yaml from the zod schemas, only when it changed. */
function main(): void {
  const path = resolve(__dirname, '..', '..', OPENAPI_FILE);
  const rendered = renderOpenApiYaml();
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // First generation.
  }
  if (current === rendered) {
    process.stdout.write(`${OPENAPI_FILE} is up to date\n`);
    return;
  }
  writeFileSync(path, rendered);
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
}

main();
