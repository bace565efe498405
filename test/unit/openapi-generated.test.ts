import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPENAPI_FILE, renderOpenApiYaml } from '../../api/openapi/openapi-document';

test('ORCH-3044: .specs/openapi.yaml is exactly what the zod schemas generate (run `npm run openapi` after changing them)', () => {
  expect(readFileSync(join(__dirname, '..', '..', OPENAPI_FILE), 'utf8')).toBe(renderOpenApiYaml());
});
