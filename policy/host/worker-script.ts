import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkerOptions } from 'node:worker_threads';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread from one of the self-contained `*-worker.ts` modules beside this file.
 *
 * Built (`dist/`), the compiled `.js` sits next to this module and Node loads it directly. From
 * sources (jest, ts tooling) only the `.ts` exists, and a worker thread is plain Node that cannot
 * load TypeScript, so the module is transpiled on the fly with the `typescript` devDependency and
 * run as an eval worker. The worker modules therefore import only Node built-ins and types: a
 * relative import would not resolve from an eval worker.
 */
export function startWorker(baseName: string, options: WorkerOptions): Worker {
  const compiled = path.join(__dirname, `${baseName}.js`);
  if (existsSync(compiled)) return new Worker(compiled, options);
  return new Worker(transpiledSource(baseName), { ...options, eval: true });
}

const sourceCache = new Map<string, string>();

interface TypeScriptApi {
  transpileModule(
    input: string,
    options: { fileName: string; compilerOptions: Record<string, unknown> },
  ): { outputText: string };
  ModuleKind: { Node16: number };
  ScriptTarget: { ES2022: number };
}

function transpiledSource(baseName: string): string {
  const cached = sourceCache.get(baseName);
  if (cached !== undefined) return cached;
  const sourcePath = path.join(__dirname, `${baseName}.ts`);
  // Loaded lazily and only from sources: production never reaches this line.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as TypeScriptApi;
  // `.cts` keeps the output CommonJS while Node16 keeps `import()` a real dynamic import.
  const { outputText } = ts.transpileModule(readFileSync(sourcePath, 'utf8'), {
    fileName: `${baseName}.cts`,
    compilerOptions: { module: ts.ModuleKind.Node16, target: ts.ScriptTarget.ES2022, sourceMap: false },
  });
  sourceCache.set(baseName, outputText);
  return outputText;
}
