import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Finds a file of the repository (the WIT, the example sources) from both the sources and the
 * built `dist/` tree, which sits one level deeper and holds no copies of non-TypeScript files.
 */
export function repoFile(relativePath: string): string {
  let directory = __dirname;
  for (;;) {
    const candidate = path.join(directory, relativePath);
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`cannot find ${relativePath} above ${__dirname}`);
    directory = parent;
  }
}
