import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { policyRequestFromTask } from '../../policy/sdk';
import { PolicyRequestSchema } from '../../policy/sdk/snapshot';
import type * as SdkModule from '../../policy/sdk';
import type * as WireModule from '../../policy/sdk/wire';
import type { TaskRequest } from '../../core/task-request';

const REPO = resolve(__dirname, '..', '..');
const SDK_DIR = join(REPO, 'policy', 'sdk');
const SDK_FILES = readdirSync(SDK_DIR).filter((name) => name.endsWith('.ts')).map((name) => join(SDK_DIR, name));

/** Packages the SDK may load at run time: pure computation, no I/O. */
const PURE_PACKAGES = new Set(['zod']);
/** Globals through which code does I/O (or reaches modules) without an import. */
const IO_GLOBALS = new Set(['fetch', 'process', 'require', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'Bun', 'Deno']);
/** Modules the runtime check replaces with tripwires, under both names. */
const IO_MODULES = ['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'dns', 'dns/promises', 'tls', 'dgram', 'child_process', 'worker_threads', 'cluster', 'inspector'];

const TASK: TaskRequest = {
  task_id: '7c0f1d2e-3a4b-4c5d-8e6f-000000000001',
  session_id: '5e1a2b3c-4d5e-4f60-8172-000000000001',
  workload: 'completion',
  model_ref: 'hf:org/model',
  engine: 'vllm',
  ctx: 4096,
  priority: 'batch',
  prompt: 'héllo',
  max_tokens: 64,
  deadline_ms: 10_000_000_000,
};

interface ModuleReference {
  readonly specifier: string;
  readonly typeOnly: boolean;
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (clause === undefined) return false; // `import 'x'` runs the module
  if (clause.isTypeOnly) return true;
  if (clause.name !== undefined) return false;
  const bindings = clause.namedBindings;
  return bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((element) => element.isTypeOnly);
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((element) => element.isTypeOnly);
}

/** Every module a source file names (static, re-export, dynamic, require) and the I/O globals it uses. */
function scan(file: string, text: string): { references: ModuleReference[]; globals: string[] } {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const references: ModuleReference[] = [];
  const globals: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      references.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyImport(node) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      references.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyExport(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      references.push({ specifier: node.moduleReference.expression.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      references.push({ specifier: argument !== undefined && ts.isStringLiteral(argument) ? argument.text : '<computed import()>', typeOnly: false });
    } else if (ts.isImportTypeNode(node)) {
      return; // `import('x').T` is a type
    } else if (ts.isIdentifier(node) && IO_GLOBALS.has(node.text) && !ts.isPropertyAccessExpression(node.parent)) {
      globals.push(node.text);
    } else if (ts.isIdentifier(node) && IO_GLOBALS.has(node.text) && ts.isPropertyAccessExpression(node.parent) && node.parent.expression === node) {
      globals.push(node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { references, globals };
}

/**
 * Walks the run-time import graph from every SDK module: a relative import is followed (core/errors.ts
 * is part of the SDK's closure), a type-only import is erased at compile time, `zod` is pure; anything
 * else (node:fs, node:net, undici, …) is a finding.
 */
function ioFindings(entries: readonly string[], read: (file: string) => string = (file) => readFileSync(file, 'utf8')): string[] {
  const findings: string[] = [];
  const seen = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop() ?? '';
    if (seen.has(file)) continue;
    seen.add(file);
    const where = relative(REPO, file);
    const { references, globals } = scan(file, read(file));
    for (const name of globals) findings.push(`${where} uses the global ${name}`);
    for (const reference of references) {
      if (reference.typeOnly || PURE_PACKAGES.has(reference.specifier)) continue;
      if (reference.specifier.startsWith('.')) {
        const base = resolve(dirname(file), reference.specifier);
        const target = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => existsSync(candidate));
        if (target === undefined) findings.push(`${where} imports ${reference.specifier}, which is not a TypeScript module of this repository`);
        else pending.push(target);
        continue;
      }
      findings.push(`${where} imports ${reference.specifier} at run time`);
    }
  }
  return findings;
}

describe('OC-POLICY-SDK-4110: the policy SDK does no network or filesystem I/O', () => {
  test('its run-time import graph reaches only SDK-local modules, the error codes and zod; no I/O globals', () => {
    expect(SDK_FILES.length).toBeGreaterThan(3);
    expect(ioFindings(SDK_FILES)).toEqual([]);
  });

  test('the graph walk finds an I/O import, a re-export of one and a fetch (the check can fail)', () => {
    // An SDK file's text replaced as the walk reads it; nothing is written to disk.
    const file = join(SDK_DIR, 'abi-version.ts');
    const scanText = (text: string): string[] => ioFindings([file], (name) => (name === file ? text : readFileSync(name, 'utf8')));
    expect(scanText("import 'node:fs';")).toEqual(['policy/sdk/abi-version.ts imports node:fs at run time']);
    expect(scanText("export { request } from 'undici';")).toEqual(['policy/sdk/abi-version.ts imports undici at run time']);
    expect(scanText("const cp = require('child_process');")).toEqual(['policy/sdk/abi-version.ts uses the global require']);
    expect(scanText('export const get = () => fetch("http://x");')).toEqual(['policy/sdk/abi-version.ts uses the global fetch']);
    expect(scanText("import type { Socket } from 'node:net'; export type S = Socket;")).toEqual([]);
  });

  test('its functions run with fs, net, http(s), dns, child_process and fetch replaced by tripwires, and touch none', () => {
    const calls: string[] = [];
    const tripwire = (name: string): unknown =>
      new Proxy(
        {},
        {
          get: (_target, property) => {
            if (typeof property === 'symbol' || property === '__esModule' || property === 'then') return undefined;
            return (..._args: unknown[]) => {
              calls.push(`${name}.${property}`);
              throw new Error(`the policy SDK called ${name}.${property}`);
            };
          },
        },
      );
    const realFetch = globalThis.fetch;
    globalThis.fetch = () => {
      calls.push('fetch');
      throw new Error('the policy SDK called fetch');
    };
    try {
      jest.isolateModules(() => {
        for (const name of IO_MODULES) {
          jest.doMock(name, () => tripwire(name));
          jest.doMock(`node:${name}`, () => tripwire(`node:${name}`));
        }
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const sdk = require('../../policy/sdk') as typeof SdkModule;
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const wire = require('../../policy/sdk/wire') as typeof WireModule;
        const request = sdk.policyRequestFromTask(TASK, 'tenant-a');
        const replica = { replicaId: 'r0', replicaSetKey: 'set', state: 'ready' as const, slotsTotal: 2, slotsBusy: 1, kvUsedPermille: 10, inflightTokens: 5 };
        const queued = { taskId: 'queued-1', tenant: 'tenant-b', priority: 'batch' as const, ageMs: 3, maxTokens: 8 };
        const admit = sdk.AdmitSnapshotSchema.parse({
          request,
          queue: { capacity: 4, depthInteractive: 0, depthBatch: 1, fullPolicy: 'drop-lru', tasks: [queued] },
          replicas: [replica],
          tenants: [{ tenant: 'tenant-a', queued: 0, running: 1, tokensLastMinute: 9 }],
          poolId: 'p',
        });
        const place = sdk.PlaceSnapshotSchema.parse({ candidates: [replica], request, replicaSetKey: 'set', poolId: 'p' });
        expect(sdk.parseSemVer(sdk.POLICY_ABI_VERSION)).toEqual({ major: sdk.POLICY_ABI.major, minor: sdk.POLICY_ABI.minor, patch: sdk.POLICY_ABI.patch });
        expect(sdk.policyExportName()).toBe(`llama-orch:policy/policy@${sdk.POLICY_ABI_VERSION}`);
        expect(sdk.toU32(2 ** 40)).toBe(4_294_967_295);
        expect(wire.decodeAdmitDecision({ tag: 'accept' }, admit)).toEqual({ ok: true, value: { kind: 'accept' } });
        expect(wire.decodeAdmitDecision({ tag: 'reject', val: { code: 'admission-reject' } }, admit)).toEqual({ ok: true, value: { kind: 'reject', code: 'ADMISSION_REJECT' } });
        expect(wire.decodeAdmitDecision({ tag: 'shed', val: 'queued-1' }, admit)).toEqual({ ok: true, value: { kind: 'shed', victimTaskId: 'queued-1' } });
        expect(wire.decodeAdmitDecision({ tag: 'shed', val: 'nobody' }, admit).ok).toBe(false);
        expect(wire.decodePlaceDecision(new Uint32Array([0]), place).ok).toBe(true);
        expect(wire.decodePlaceDecision([7], place).ok).toBe(false);
      });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(calls).toEqual([]);
  });

  test('it keeps the prompt out of the snapshot (only its size) and saturates numbers into u32', () => {
    const request = policyRequestFromTask(TASK, 'tenant-a');
    expect(request).toEqual({
      maxTokens: 64,
      ctx: 4096,
      deadlineMs: 4_294_967_295,
      promptBytes: 6,
      priority: 'batch',
      workload: 'completion',
      engine: 'vllm',
      taskId: TASK.task_id,
      sessionId: TASK.session_id,
      tenant: 'tenant-a',
      modelRef: 'hf:org/model',
    });
    expect(JSON.stringify(request)).not.toContain('héllo');
    expect(PolicyRequestSchema.safeParse(request).success).toBe(true);
  });
});
