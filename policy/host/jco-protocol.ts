/** Messages between jco-bridge.ts (caller) and jco-worker.ts (the thread that runs jco). */
export type JcoJob =
  | { readonly kind: 'build-from-wat'; readonly wat: string; readonly witSource: string; readonly world: string }
  | { readonly kind: 'transpile'; readonly component: Uint8Array };

export type JcoJobResult =
  | { readonly kind: 'component'; readonly bytes: Uint8Array }
  | {
      readonly kind: 'transpiled';
      readonly files: Record<string, Uint8Array>;
      /** Unversioned interface names the component imports, e.g. `wasi:clocks/wall-clock`. */
      readonly imports: string[];
      /** Exported names, versioned and not, e.g. `llama-orch:policy/policy@1.0.0`. */
      readonly exports: string[];
    };

export type JcoReply = { readonly ok: true; readonly result: JcoJobResult } | { readonly ok: false; readonly message: string };
