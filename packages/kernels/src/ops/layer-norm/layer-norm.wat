;; LayerNorm over the last axis of a few rows (decode steps) in one pass over tfjs-wasm's heap, in place of the
;; nine tfjs ops of `moments`, `sub`, `rsqrt`, `mul` and `add`, whose per-op cost outweighs the arithmetic on one
;; row. Same formula as the ops: biased variance from the mean of squared deviations, eps inside the rsqrt.
(module
  (import "env" "memory" (memory 0))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; y[r] = (x[r] - mean) / sqrt(var + eps) * w (+ b) for rows r < $rows of width $d. Addresses are bytes;
  ;; $b = 0 means no bias.
  (func (export "layer_norm")
    (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $rows i32) (param $d i32) (param $eps f32)
    (local $r i32) (local $i i32) (local $d4 i32) (local $acc v128) (local $t v128)
    (local $mean f32) (local $var f32) (local $rstd f32) (local $s f32) (local $vm v128) (local $vr v128)
    (local.set $d4 (i32.and (local.get $d) (i32.const -4)))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        ;; mean
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $i) (local.get $d4)))
          (local.set $acc (f32x4.add (local.get $acc)
            (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $l1)))
        (local.set $s (call $hsum (local.get $acc)))
        (block $t1 (loop $lt1
          (br_if $t1 (i32.ge_u (local.get $i) (local.get $d)))
          (local.set $s (f32.add (local.get $s) (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $lt1)))
        (local.set $mean (f32.div (local.get $s) (f32.convert_i32_u (local.get $d))))
        (local.set $vm (f32x4.splat (local.get $mean)))
        ;; variance: mean of squared deviations
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $d2 (loop $l2
          (br_if $d2 (i32.ge_u (local.get $i) (local.get $d4)))
          (local.set $t (f32x4.sub (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
            (local.get $vm)))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $t) (local.get $t))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $l2)))
        (local.set $s (call $hsum (local.get $acc)))
        (block $t2 (loop $lt2
          (br_if $t2 (i32.ge_u (local.get $i) (local.get $d)))
          (local.set $var (f32.sub (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
            (local.get $mean)))
          (local.set $s (f32.add (local.get $s) (f32.mul (local.get $var) (local.get $var))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $lt2)))
        (local.set $var (f32.div (local.get $s) (f32.convert_i32_u (local.get $d))))
        (local.set $rstd (f32.div (f32.const 1) (f32.sqrt (f32.add (local.get $var) (local.get $eps)))))
        (local.set $vr (f32x4.splat (local.get $rstd)))
        ;; y = (x - mean) * rstd * w (+ b)
        (local.set $i (i32.const 0))
        (block $d3 (loop $l3
          (br_if $d3 (i32.ge_u (local.get $i) (local.get $d4)))
          (local.set $t (f32x4.mul
            (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
              (local.get $vm)) (local.get $vr))
            (v128.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))))
          (if (local.get $b) (then
            (local.set $t (f32x4.add (local.get $t)
              (v128.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2))))))))
          (v128.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))) (local.get $t))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $l3)))
        (block $t3 (loop $lt3
          (br_if $t3 (i32.ge_u (local.get $i) (local.get $d)))
          (local.set $s (f32.mul
            (f32.mul (f32.sub (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
              (local.get $mean)) (local.get $rstd))
            (f32.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))))
          (if (local.get $b) (then
            (local.set $s (f32.add (local.get $s)
              (f32.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2))))))))
          (f32.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))) (local.get $s))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $lt3)))
        (local.set $x (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $y (i32.add (local.get $y) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))
)
