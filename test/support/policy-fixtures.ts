import { POLICY_ABI_VERSION } from '../../policy/sdk/abi-version';
import { buildWatPluginCached, policyWitSource } from '../../policy/tools/build-plugin';

/**
 * Misbehaving plugins for the sandbox tests, generated as WAT around one template so each fixture
 * shows only what it does differently. Built through the same jco path as real plugins and cached.
 */

interface FixtureParts {
  /** Core-module imports, e.g. `(import "wasi:clocks/monotonic-clock@0.2.3" "now" (func $now (result i64)))`. */
  readonly imports?: string;
  /** Body of admit; `$snapshot` is the snapshot address; must leave a result address on the stack. */
  readonly admit?: string;
  readonly place?: string;
  /** Extra WIT: the world's imports and nested packages that define them. */
  readonly worldImports?: string;
  readonly packages?: string;
  readonly abiVersion?: string;
  /** Initial memory in 64 KiB pages; 1 by default. */
  readonly initialPages?: number;
}

const ACCEPT = '(call $alloc (i32.const 4) (i32.const 28))'; // zeroed memory: case 0 = accept
const EMPTY_RANKING = '(call $alloc (i32.const 4) (i32.const 8))'; // (ptr 0, len 0)

function fixtureWat(parts: FixtureParts): string {
  const abi = parts.abiVersion ?? POLICY_ABI_VERSION;
  return `(module
  ${parts.imports ?? ''}
  (memory (export "memory") ${parts.initialPages ?? 1})
  (global $heap (mut i32) (i32.const 4096))
  (func $alloc (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))))
    (memory.fill (local.get $ptr) (i32.const 0) (local.get $size))
    (local.get $ptr))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $alloc (local.get 2) (local.get 3)))
  (func (export "llama-orch:policy/policy@${abi}#admit") (param $snapshot i32) (result i32)
    ${parts.admit ?? ACCEPT})
  (func (export "llama-orch:policy/policy@${abi}#place") (param $snapshot i32) (result i32)
    ${parts.place ?? EMPTY_RANKING})
  (func (export "cabi_post_llama-orch:policy/policy@${abi}#admit") (param i32) (global.set $heap (i32.const 4096)))
  (func (export "cabi_post_llama-orch:policy/policy@${abi}#place") (param i32) (global.set $heap (i32.const 4096)))
)`;
}

function fixtureWit(parts: FixtureParts): string {
  const abi = parts.abiVersion ?? POLICY_ABI_VERSION;
  const policy = policyWitSource().replace(/package llama-orch:policy@[0-9.]+;/, `package llama-orch:policy@${abi} {`) + '\n}\n';
  return `package test:fixture;
world fixture {
  ${parts.worldImports ?? ''}
  export llama-orch:policy/policy@${abi};
}
${parts.packages ?? ''}
${policy}`;
}

function build(parts: FixtureParts): Promise<string> {
  return buildWatPluginCached({ wat: fixtureWat(parts), witSource: fixtureWit(parts), world: 'test:fixture/fixture' });
}

export const fixtures = {
  /** Spins forever in admit. */
  infiniteLoop: () => build({ admit: '(loop $spin (br $spin)) (unreachable)' }),
  /** Grows memory a page at a time until growth fails, then traps. */
  memoryBomb: () =>
    build({
      admit: `(block $full (loop $grow
         (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
         (br $grow)))
       (unreachable)`,
    }),
  /** Traps on every admit. */
  trap: () => build({ admit: '(unreachable)' }),
  /** Ranks a candidate that does not exist. */
  badRanking: () =>
    build({
      place: `(local $list i32) (local $result i32)
        (local.set $list (call $alloc (i32.const 4) (i32.const 4)))
        (i32.store (local.get $list) (i32.const 99))
        (local.set $result (call $alloc (i32.const 4) (i32.const 8)))
        (i32.store (local.get $result) (local.get $list))
        (i32.store offset=4 (local.get $result) (i32.const 1))
        (local.get $result)`,
    }),
  /** Tries to list preopened directories (a filesystem escape). */
  readsFile: () =>
    build({
      imports: '(import "wasi:filesystem/preopens@0.2.3" "get-directories" (func $dirs (param i32)))',
      admit: `(call $dirs (i32.const 64)) ${ACCEPT}`,
      worldImports: 'import wasi:filesystem/preopens@0.2.3;',
      packages: 'package wasi:filesystem@0.2.3 { interface preopens { get-directories: func() -> list<string>; } }',
    }),
  /** Tries to create a TCP socket (a network escape). */
  opensSocket: () =>
    build({
      imports: '(import "wasi:sockets/tcp-create-socket@0.2.3" "create-tcp-socket" (func $socket (param i32) (result i32)))',
      admit: `(drop (call $socket (i32.const 0))) ${ACCEPT}`,
      worldImports: 'import wasi:sockets/tcp-create-socket@0.2.3;',
      packages: 'package wasi:sockets@0.2.3 { interface tcp-create-socket { create-tcp-socket: func(family: u8) -> u32; } }',
    }),
  /** Reads the monotonic clock, and rejects (deadline-unmet) when it reads zero, else accepts. */
  readsClock: () =>
    build({
      imports: '(import "wasi:clocks/monotonic-clock@0.2.3" "now" (func $now (result i64)))',
      admit: `(local $result i32)
        (local.set $result ${ACCEPT})
        (if (i64.eqz (call $now)) (then (i32.store8 (local.get $result) (i32.const 1)) (i32.store8 offset=4 (local.get $result) (i32.const 3))))
        (local.get $result)`,
      worldImports: 'import wasi:clocks/monotonic-clock@0.2.3;',
      packages: 'package wasi:clocks@0.2.3 { interface monotonic-clock { type instant = u64; now: func() -> instant; } }',
    }),
  /** Asks for 2 MiB of memory before it runs. */
  bigStart: () => build({ initialPages: 32 }),
  /** A well-behaved plugin of another MAJOR. */
  nextMajor: () => build({ abiVersion: '2.0.0' }),
  /** A well-behaved plugin of a newer MINOR than the host. */
  nextMinor: () => build({ abiVersion: '1.1.0' }),
};
