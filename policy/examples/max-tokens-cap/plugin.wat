;; max-tokens-cap: an example policy plugin for llama-orch:policy@1.0.0, written by hand in WAT.
;;
;;   admit: rejects a request whose max-tokens is over 2048 with ADMISSION_REJECT, a retry hint of
;;          1000 ms and the label "max-tokens-over-2048"; accepts everything else.
;;   place: pins every task to the last candidate of the snapshot (the highest replica id, since the
;;          gateway lists candidates in replica-id order) by ranking that one only; the others are
;;          left out, so the gateway places the task on that replica's lane (a "policy pin").
;;
;; Both differ visibly from the built-in policy, which is the point: an end-to-end test can tell
;; which policy decided. Build it with policy/tools/build-plugin.ts (jco parse, embed, new).
;;
;; Canonical ABI facts this file relies on (policy/wit/policy.wit, field order frozen within 1.x):
;;   * admit-snapshot and place-snapshot flatten to more than 16 values, so each export receives
;;     one i32: the address of the record in this module's memory, written there by the host
;;     through cabi_realloc.
;;   * admit-snapshot starts with `request`, which starts with `max-tokens: u32` -> offset 0.
;;   * place-snapshot starts with `candidates: list<replica>` -> (ptr, len) at offsets 0 and 4.
;;   * Both results flatten to more than one value, so each export returns the address of its
;;     result in memory. admit-decision: case byte at 0 (0 accept, 1 reject, 2 shed), payload at 4.
;;     rejection: code byte at 0, option<u32> retry at 4 (tag) / 8 (value), option<string> label at
;;     12 (tag) / 16 (ptr) / 20 (len). list<u32>: (ptr, len) pair.
;;   * After the host has read a result it calls cabi_post_<export>; this module then resets its
;;     bump allocator, so memory does not grow from call to call.
(module
  (memory (export "memory") 1)

  (data (i32.const 1024) "max-tokens-over-2048")

  (global $heap_base i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))

  ;; Bump allocator: aligned, grows memory when needed, traps when it cannot.
  (func $alloc (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $pages i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (local.set $pages
          (i32.sub
            (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
            (memory.size)))
        (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "cabi_realloc")
    (param $old_ptr i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $new_ptr i32)
    (local.set $new_ptr (call $alloc (local.get $align) (local.get $new_size)))
    (if (i32.ne (local.get $old_ptr) (i32.const 0))
      (then (memory.copy (local.get $new_ptr) (local.get $old_ptr) (local.get $old_size))))
    (local.get $new_ptr))

  (func (export "llama-orch:policy/policy@1.0.0#admit") (param $snapshot i32) (result i32)
    (local $result i32)
    (local.set $result (call $alloc (i32.const 4) (i32.const 28)))
    (if (i32.gt_u (i32.load (local.get $snapshot)) (i32.const 2048))
      (then
        (i32.store8 (local.get $result) (i32.const 1))                             ;; reject
        (i32.store8 offset=4 (local.get $result) (i32.const 0))                    ;; admission-reject
        (i32.store8 offset=8 (local.get $result) (i32.const 1))                    ;; retry-after-ms: some
        (i32.store offset=12 (local.get $result) (i32.const 1000))                 ;;   1000 ms
        (i32.store8 offset=16 (local.get $result) (i32.const 1))                   ;; policy-label: some
        (i32.store offset=20 (local.get $result) (i32.const 1024))                 ;;   ptr
        (i32.store offset=24 (local.get $result) (i32.const 20)))                  ;;   len
      (else
        (i32.store8 (local.get $result) (i32.const 0))))                           ;; accept
    (local.get $result))

  (func (export "llama-orch:policy/policy@1.0.0#place") (param $snapshot i32) (result i32)
    (local $count i32) (local $list i32) (local $result i32)
    (local.set $count (i32.load offset=4 (local.get $snapshot)))
    (local.set $list (call $alloc (i32.const 4) (i32.const 4)))
    (local.set $result (call $alloc (i32.const 4) (i32.const 8)))
    (i32.store (local.get $result) (local.get $list))
    (if (i32.eqz (local.get $count))
      (then (i32.store offset=4 (local.get $result) (i32.const 0)))                 ;; nothing to rank
      (else
        (i32.store (local.get $list) (i32.sub (local.get $count) (i32.const 1)))   ;; the last candidate
        (i32.store offset=4 (local.get $result) (i32.const 1))))                   ;; and only it: a pin
    (local.get $result))

  (func (export "cabi_post_llama-orch:policy/policy@1.0.0#admit") (param i32)
    (global.set $heap (global.get $heap_base)))
  (func (export "cabi_post_llama-orch:policy/policy@1.0.0#place") (param i32)
    (global.set $heap (global.get $heap_base)))
)
