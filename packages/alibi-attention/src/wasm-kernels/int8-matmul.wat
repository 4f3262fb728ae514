;; Weight-only int8 linear over tfjs-wasm's heap: y[M, N] = x[M, K] . (Wq[N, K] * scale[N])^T.
;; x and y are float32 row-major; Wq is int8 with rows padded to $kp bytes (a multiple of 16); scale is float32
;; per output row. Activations stay float32 and so do the sums: only the weights lose precision. Decode (M = 1)
;; reads each weight once as one byte, a quarter of the float32 traffic that bounds its speed.
(module
  (import "env" "memory" (memory 0))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; One row of x against one weight row: 16 weights per step, widened i8 -> i16 -> i32 -> f32, four
  ;; independent accumulators so the adds pipeline. Only the first $k elements of x are read.
  (func $dot1 (param $x i32) (param $w i32) (param $k i32) (result f32)
    (local $end i32) (local $v v128) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32)
    (local.set $end (i32.add (local.get $w) (i32.and (local.get $k) (i32.const -16))))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $v (v128.load (local.get $w)))
        (local.set $lo (i16x8.extend_low_i8x16_s (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_s (local.get $v)))
        (local.set $a0 (f32x4.add (local.get $a0)
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $lo))) (v128.load (local.get $x)))))
        (local.set $a1 (f32x4.add (local.get $a1)
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $lo))) (v128.load offset=16 (local.get $x)))))
        (local.set $a2 (f32x4.add (local.get $a2)
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $hi))) (v128.load offset=32 (local.get $x)))))
        (local.set $a3 (f32x4.add (local.get $a3)
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $hi))) (v128.load offset=48 (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (br $vec)))
    (local.set $s (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1))
                                        (f32x4.add (local.get $a2) (local.get $a3)))))
    ;; K % 16 tail, scalar.
    (local.set $end (i32.add (local.get $end) (i32.and (local.get $k) (i32.const 15))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.convert_i32_s (i32.load8_s (local.get $w))) (f32.load (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 1)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (br $tail)))
    (local.get $s))

  ;; Four rows of x (row stride $xs bytes) against one weight row: each 16 weights are widened once and used
  ;; four times. Stores scale * dot into y, y + $ys, y + 2 $ys, y + 3 $ys.
  (func $dot4
    (param $x i32) (param $xs i32) (param $w i32) (param $k i32) (param $y i32) (param $ys i32) (param $scale f32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $end i32)
    (local $v v128) (local $lo v128) (local $hi v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $q f32) (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32)
    (local.set $x1 (i32.add (local.get $x) (local.get $xs)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $xs)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $xs)))
    (local.set $end (i32.add (local.get $w) (i32.and (local.get $k) (i32.const -16))))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $v (v128.load (local.get $w)))
        (local.set $lo (i16x8.extend_low_i8x16_s (local.get $v)))
        (local.set $hi (i16x8.extend_high_i8x16_s (local.get $v)))
        (local.set $w0 (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $lo))))
        (local.set $w1 (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $lo))))
        (local.set $w2 (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $hi))))
        (local.set $w3 (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $hi))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.add
          (f32x4.add (f32x4.mul (local.get $w0) (v128.load (local.get $x)))
                     (f32x4.mul (local.get $w1) (v128.load offset=16 (local.get $x))))
          (f32x4.add (f32x4.mul (local.get $w2) (v128.load offset=32 (local.get $x)))
                     (f32x4.mul (local.get $w3) (v128.load offset=48 (local.get $x)))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.add
          (f32x4.add (f32x4.mul (local.get $w0) (v128.load (local.get $x1)))
                     (f32x4.mul (local.get $w1) (v128.load offset=16 (local.get $x1))))
          (f32x4.add (f32x4.mul (local.get $w2) (v128.load offset=32 (local.get $x1)))
                     (f32x4.mul (local.get $w3) (v128.load offset=48 (local.get $x1)))))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.add
          (f32x4.add (f32x4.mul (local.get $w0) (v128.load (local.get $x2)))
                     (f32x4.mul (local.get $w1) (v128.load offset=16 (local.get $x2))))
          (f32x4.add (f32x4.mul (local.get $w2) (v128.load offset=32 (local.get $x2)))
                     (f32x4.mul (local.get $w3) (v128.load offset=48 (local.get $x2)))))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.add
          (f32x4.add (f32x4.mul (local.get $w0) (v128.load (local.get $x3)))
                     (f32x4.mul (local.get $w1) (v128.load offset=16 (local.get $x3))))
          (f32x4.add (f32x4.mul (local.get $w2) (v128.load offset=32 (local.get $x3)))
                     (f32x4.mul (local.get $w3) (v128.load offset=48 (local.get $x3)))))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (local.set $x1 (i32.add (local.get $x1) (i32.const 64)))
        (local.set $x2 (i32.add (local.get $x2) (i32.const 64)))
        (local.set $x3 (i32.add (local.get $x3) (i32.const 64)))
        (br $vec)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (local.set $s1 (call $hsum (local.get $a1)))
    (local.set $s2 (call $hsum (local.get $a2)))
    (local.set $s3 (call $hsum (local.get $a3)))
    (local.set $end (i32.add (local.get $end) (i32.and (local.get $k) (i32.const 15))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $q (f32.convert_i32_s (i32.load8_s (local.get $w))))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $q) (f32.load (local.get $x)))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $q) (f32.load (local.get $x1)))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $q) (f32.load (local.get $x2)))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $q) (f32.load (local.get $x3)))))
        (local.set $w (i32.add (local.get $w) (i32.const 1)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $x1 (i32.add (local.get $x1) (i32.const 4)))
        (local.set $x2 (i32.add (local.get $x2) (i32.const 4)))
        (local.set $x3 (i32.add (local.get $x3) (i32.const 4)))
        (br $tail)))
    (f32.store (local.get $y) (f32.mul (local.get $s0) (local.get $scale)))
    (local.set $y (i32.add (local.get $y) (local.get $ys)))
    (f32.store (local.get $y) (f32.mul (local.get $s1) (local.get $scale)))
    (local.set $y (i32.add (local.get $y) (local.get $ys)))
    (f32.store (local.get $y) (f32.mul (local.get $s2) (local.get $scale)))
    (local.set $y (i32.add (local.get $y) (local.get $ys)))
    (f32.store (local.get $y) (f32.mul (local.get $s3) (local.get $scale))))

  ;; y = x . (Wq * scale)^T. Addresses are bytes: $x [m, k] f32, $w [n, kp] i8, $s [n] f32, $y [m, n] f32.
  ;; Weight rows outside, rows of x inside: W is streamed from memory once whatever M is, one row (kp bytes)
  ;; staying in L1 while every block of four x rows uses it.
  (func (export "int8_matmul")
    (param $x i32) (param $w i32) (param $s i32) (param $y i32)
    (param $m i32) (param $n i32) (param $k i32) (param $kp i32)
    (local $j i32) (local $i i32) (local $m4 i32) (local $xs i32) (local $ys i32)
    (local $scale f32) (local $xi i32) (local $yj i32)
    (local.set $xs (i32.shl (local.get $k) (i32.const 2)))
    (local.set $ys (i32.shl (local.get $n) (i32.const 2)))
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (local.set $j (i32.const 0))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $scale (f32.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $xi (local.get $x))
        (local.set $yj (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $quads_done
          (loop $quad
            (br_if $quads_done (i32.ge_u (local.get $i) (local.get $m4)))
            (call $dot4 (local.get $xi) (local.get $xs) (local.get $w) (local.get $k)
              (local.get $yj) (local.get $ys) (local.get $scale))
            (local.set $xi (i32.add (local.get $xi) (i32.shl (local.get $xs) (i32.const 2))))
            (local.set $yj (i32.add (local.get $yj) (i32.shl (local.get $ys) (i32.const 2))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $quad)))
        (block $singles_done
          (loop $single
            (br_if $singles_done (i32.ge_u (local.get $i) (local.get $m)))
            (f32.store (local.get $yj)
              (f32.mul (call $dot1 (local.get $xi) (local.get $w) (local.get $k)) (local.get $scale)))
            (local.set $xi (i32.add (local.get $xi) (local.get $xs)))
            (local.set $yj (i32.add (local.get $yj) (local.get $ys)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $single)))
        (local.set $w (i32.add (local.get $w) (local.get $kp)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $row))))

  ;; Wq * scale written out as float32 rows [n, k] at $out, for prefill: with many rows of x a float matmul
;; (XNNPACK) beats the int8 kernel, and the widening here is one pass over the weight for all of them.
  (func (export "int8_dequantize")
    (param $w i32) (param $s i32) (param $out i32) (param $n i32) (param $k i32) (param $kp i32)
    (local $j i32) (local $src i32) (local $dst i32) (local $end i32) (local $row_end i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $scale v128)
    (local.set $j (i32.const 0))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $scale (f32x4.splat (f32.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $src (i32.add (local.get $w) (i32.mul (local.get $j) (local.get $kp))))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $j) (local.get $k)) (i32.const 2))))
        (local.set $end (i32.add (local.get $src) (i32.and (local.get $k) (i32.const -16))))
        (local.set $row_end (i32.add (local.get $src) (local.get $k)))
        (block $vec_done
          (loop $vec
            (br_if $vec_done (i32.ge_u (local.get $src) (local.get $end)))
            (local.set $v (v128.load (local.get $src)))
            (local.set $lo (i16x8.extend_low_i8x16_s (local.get $v)))
            (local.set $hi (i16x8.extend_high_i8x16_s (local.get $v)))
            (v128.store (local.get $dst)
              (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $lo))) (local.get $scale)))
            (v128.store offset=16 (local.get $dst)
              (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $lo))) (local.get $scale)))
            (v128.store offset=32 (local.get $dst)
              (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $hi))) (local.get $scale)))
            (v128.store offset=48 (local.get $dst)
              (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $hi))) (local.get $scale)))
            (local.set $src (i32.add (local.get $src) (i32.const 16)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
            (br $vec)))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_u (local.get $src) (local.get $row_end)))
            (f32.store (local.get $dst)
              (f32.mul (f32.convert_i32_s (i32.load8_s (local.get $src))) (f32x4.extract_lane 0 (local.get $scale))))
            (local.set $src (i32.add (local.get $src) (i32.const 1)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
            (br $tail)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $row))))
)
