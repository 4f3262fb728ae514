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

;; ---- Rows of x rounded to 16 bits: decode's few rows ----
  ;; Widening every weight to float32 bounds the float path at about one weight per cycle. Instead each row of x
  ;; is rounded to int16 with its own scale (sx = max|x| / 32767, a relative error of at most 2^-16 of the row's
  ;; largest value, far below the weights' int8 rounding) and the products are summed by i32x4.dot_i16x8_s: per 16
  ;; weights one load, two widenings and two dot products. A dot product's lane is at most 2 * 127 * 32768, so an
  ;; int32 sum that gains one per step is moved to float32 every 256 steps (4096 weights) and one that gains two
  ;; every 128, before it could overflow.

  ;; x[0, k) -> int16 q[0, kp) (zeros from k on); returns the scale sx (0 for an all-zero row).
  (func $round_row (param $x i32) (param $k i32) (param $kp i32) (param $q i32) (result f32)
    (local $i i32) (local $max f32) (local $inv f32)
    (block $max_done
      (loop $max_loop
        (br_if $max_done (i32.ge_u (local.get $i) (local.get $k)))
        (local.set $max (f32.max (local.get $max)
          (f32.abs (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $max_loop)))
    (local.set $inv (select (f32.div (f32.const 32767) (local.get $max)) (f32.const 0)
      (f32.gt (local.get $max) (f32.const 0))))
    (local.set $i (i32.const 0))
    (block $q_done
      (loop $q_loop
        (br_if $q_done (i32.ge_u (local.get $i) (local.get $kp)))
        (i32.store16 (i32.add (local.get $q) (i32.shl (local.get $i) (i32.const 1)))
          (select
            (i32.trunc_sat_f32_s (f32.nearest (f32.mul (local.get $inv)
              (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))))
            (i32.const 0)
            (i32.lt_u (local.get $i) (local.get $k))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $q_loop)))
    (f32.div (local.get $max) (f32.const 32767)))

  ;; One int16 row q against one int8 weight row of $kp bytes (a multiple of 16): the integer dot product as f32.
  (func $dot1_a16 (param $q i32) (param $w i32) (param $kp i32) (result f32)
    (local $steps i32) (local $end i32) (local $v v128)
    (local $i0 v128) (local $i1 v128) (local $acc v128)
    (local.set $steps (i32.shr_u (local.get $kp) (i32.const 4)))
    ;; Sums gain one dot product per step each.
    (block $blocks_done
      (loop $block
        (br_if $blocks_done (i32.eqz (local.get $steps)))
        (local.set $end (i32.add (local.get $w) (i32.shl
          (select (i32.const 256) (local.get $steps) (i32.gt_u (local.get $steps) (i32.const 256))) (i32.const 4))))
        (local.set $steps (i32.sub (local.get $steps) (i32.shr_u (i32.sub (local.get $end) (local.get $w)) (i32.const 4))))
        (local.set $i0 (v128.const i32x4 0 0 0 0))
        (local.set $i1 (v128.const i32x4 0 0 0 0))
        (block $steps_done
          (loop $step
            (br_if $steps_done (i32.ge_u (local.get $w) (local.get $end)))
            (local.set $v (v128.load (local.get $w)))
            (local.set $i0 (i32x4.add (local.get $i0)
              (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $v)) (v128.load (local.get $q)))))
            (local.set $i1 (i32x4.add (local.get $i1)
              (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $v)) (v128.load offset=16 (local.get $q)))))
            (local.set $w (i32.add (local.get $w) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (br $step)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.add (f32x4.convert_i32x4_s (local.get $i0)) (f32x4.convert_i32x4_s (local.get $i1)))))
        (br $block)))
    (call $hsum (local.get $acc)))

  ;; Four int16 rows (q, q + $qs, ...) against one int8 weight row: each 16 weights are loaded and widened once
  ;; for the four (each row's sum gains two dot products per step: moved to float every 128 steps). Stores the four
  ;; float sums at $out .. $out + 12.
  (func $dot4_a16 (param $q i32) (param $qs i32) (param $w i32) (param $kp i32) (param $out i32)
    (local $steps i32) (local $end i32) (local $v v128) (local $lo v128) (local $hi v128)
    (local $q1 i32) (local $q2 i32) (local $q3 i32)
    (local $i0 v128) (local $i1 v128) (local $i2 v128) (local $i3 v128)
    (local $f0 v128) (local $f1 v128) (local $f2 v128) (local $f3 v128)
    (local.set $q1 (i32.add (local.get $q) (local.get $qs)))
    (local.set $q2 (i32.add (local.get $q1) (local.get $qs)))
    (local.set $q3 (i32.add (local.get $q2) (local.get $qs)))
    (local.set $steps (i32.shr_u (local.get $kp) (i32.const 4)))
    (block $blocks_done
      (loop $block
        (br_if $blocks_done (i32.eqz (local.get $steps)))
        (local.set $end (i32.add (local.get $w) (i32.shl
          (select (i32.const 128) (local.get $steps) (i32.gt_u (local.get $steps) (i32.const 128))) (i32.const 4))))
        (local.set $steps (i32.sub (local.get $steps) (i32.shr_u (i32.sub (local.get $end) (local.get $w)) (i32.const 4))))
        (local.set $i0 (v128.const i32x4 0 0 0 0))
        (local.set $i1 (v128.const i32x4 0 0 0 0))
        (local.set $i2 (v128.const i32x4 0 0 0 0))
        (local.set $i3 (v128.const i32x4 0 0 0 0))
        (block $steps_done
          (loop $step
            (br_if $steps_done (i32.ge_u (local.get $w) (local.get $end)))
            (local.set $v (v128.load (local.get $w)))
            (local.set $lo (i16x8.extend_low_i8x16_s (local.get $v)))
            (local.set $hi (i16x8.extend_high_i8x16_s (local.get $v)))
            (local.set $i0 (i32x4.add (local.get $i0) (i32x4.add
              (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $q)))
              (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $q))))))
            (local.set $i1 (i32x4.add (local.get $i1) (i32x4.add
              (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $q1)))
              (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $q1))))))
            (local.set $i2 (i32x4.add (local.get $i2) (i32x4.add
              (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $q2)))
              (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $q2))))))
            (local.set $i3 (i32x4.add (local.get $i3) (i32x4.add
              (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $q3)))
              (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $q3))))))
            (local.set $w (i32.add (local.get $w) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 32)))
            (local.set $q1 (i32.add (local.get $q1) (i32.const 32)))
            (local.set $q2 (i32.add (local.get $q2) (i32.const 32)))
            (local.set $q3 (i32.add (local.get $q3) (i32.const 32)))
            (br $step)))
        (local.set $f0 (f32x4.add (local.get $f0) (f32x4.convert_i32x4_s (local.get $i0))))
        (local.set $f1 (f32x4.add (local.get $f1) (f32x4.convert_i32x4_s (local.get $i1))))
        (local.set $f2 (f32x4.add (local.get $f2) (f32x4.convert_i32x4_s (local.get $i2))))
        (local.set $f3 (f32x4.add (local.get $f3) (f32x4.convert_i32x4_s (local.get $i3))))
        (br $block)))
    (f32.store (local.get $out) (call $hsum (local.get $f0)))
    (f32.store offset=4 (local.get $out) (call $hsum (local.get $f1)))
    (f32.store offset=8 (local.get $out) (call $hsum (local.get $f2)))
    (f32.store offset=12 (local.get $out) (call $hsum (local.get $f3))))

  ;; y = x . (Wq * scale)^T with the rows of x rounded to int16. Addresses are bytes: $x [m, k] f32, $w [n, kp]
  ;; i8, $s [n] f32, $y [m, n] f32, and $t scratch of `int8_scratch_bytes(m, kp)`. One row of x: each weight
  ;; row in turn, one sequential stream. More: blocks of four rows of x (a short block repeats its last row)
  ;; share each loaded weight, so the weight is streamed ceil(m / 4) times.
  (func (export "int8_matvec")
    (param $x i32) (param $w i32) (param $s i32) (param $y i32)
    (param $m i32) (param $n i32) (param $k i32) (param $kp i32) (param $t i32)
    (call $round_rows (local.get $x) (local.get $m) (local.get $k) (local.get $kp) (local.get $t))
    (call $matvec_rounded (local.get $t) (local.get $w) (local.get $s) (local.get $y) (local.get $m)
      (local.get $n) (local.get $kp)
      (i32.sub (i32.add (local.get $t) (call $scratch_bytes (local.get $m) (local.get $kp))) (i32.const 16))
      (i32.const 0) (local.get $n)))

  ;; Rows of x padded to a multiple of four (the last row repeated), so every block of four is whole.
  (func $padded_rows (param $m i32) (result i32)
    (select (i32.const 1) (i32.and (i32.add (local.get $m) (i32.const 3)) (i32.const -4))
      (i32.eq (local.get $m) (i32.const 1))))

  ;; Scratch of int8_matvec: the padded rows as int16 (2 kp bytes each), their scales, 16 bytes of sums.
  (func $scratch_bytes (export "int8_scratch_bytes") (param $m i32) (param $kp i32) (result i32)
    (local $rows i32)
    (local.set $rows (call $padded_rows (local.get $m)))
    (i32.add (i32.mul (local.get $rows) (i32.add (i32.shl (local.get $kp) (i32.const 1)) (i32.const 4)))
      (i32.const 16)))

  ;; Rounds the m rows of x into $t: padded row r as int16 at $t + 2 kp r, its scale (float32) after the rows
  ;; at $t + 2 kp rows + 4 r. Done once per product; the columns can then be split (int8_matvec_rounded).
  (func $round_rows (export "int8_round_rows")
    (param $x i32) (param $m i32) (param $k i32) (param $kp i32) (param $t i32)
    (local $r i32) (local $rows i32) (local $qs i32) (local $scales i32)
    (local.set $rows (call $padded_rows (local.get $m)))
    (local.set $qs (i32.shl (local.get $kp) (i32.const 1)))
    (local.set $scales (i32.add (local.get $t) (i32.mul (local.get $rows) (local.get $qs))))
    (block $done
      (loop $round
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (f32.store (i32.add (local.get $scales) (i32.shl (local.get $r) (i32.const 2)))
          (call $round_row
            (i32.add (local.get $x) (i32.shl (i32.mul
              (select (local.get $r) (i32.sub (local.get $m) (i32.const 1)) (i32.lt_u (local.get $r) (local.get $m)))
              (local.get $k)) (i32.const 2)))
            (local.get $k) (local.get $kp) (i32.add (local.get $t) (i32.mul (local.get $r) (local.get $qs)))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $round))))

  ;; Output columns [$j0, $j1) of y from rows rounded by int8_round_rows into $t ($w, $s, $y address column 0;
  ;; $y keeps its row stride of n; $sums is 16 bytes of this caller's own). Every column is the same sequence of
  ;; operations on the same rounded rows whichever range it falls in, so splitting the columns over threads
  ;; changes no output bit.
  (func $matvec_rounded (export "int8_matvec_rounded")
    (param $t i32) (param $w i32) (param $s i32) (param $y i32) (param $m i32) (param $n i32) (param $kp i32)
    (param $sums i32) (param $j0 i32) (param $j1 i32)
    (local $i i32) (local $j i32) (local $r i32) (local $rows i32) (local $qs i32) (local $scales i32)
    (local $q i32) (local $wj i32) (local $sx f32) (local $scale f32)
    (local $sx0 f32) (local $sx1 f32) (local $sx2 f32) (local $sx3 f32)
    (local.set $qs (i32.shl (local.get $kp) (i32.const 1)))
    (local.set $scales (i32.add (local.get $t) (i32.mul (call $padded_rows (local.get $m)) (local.get $qs))))
    (if (i32.eq (local.get $m) (i32.const 1))
      (then
        (local.set $sx (f32.load (local.get $scales)))
        (local.set $j (local.get $j0))
        (local.set $w (i32.add (local.get $w) (i32.mul (local.get $j0) (local.get $kp))))
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $j) (local.get $j1)))
            (f32.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2)))
              (f32.mul (f32.mul (call $dot1_a16 (local.get $t) (local.get $w) (local.get $kp))
                                (f32.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2)))))
                       (local.get $sx)))
            (local.set $w (i32.add (local.get $w) (local.get $kp)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $row)))
        (return)))
    (block $blocks_done
      (loop $block
        (br_if $blocks_done (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $rows (i32.sub (local.get $m) (local.get $i)))
        (if (i32.gt_u (local.get $rows) (i32.const 4)) (then (local.set $rows (i32.const 4))))
        (local.set $q (i32.add (local.get $t) (i32.mul (local.get $i) (local.get $qs))))
        (local.set $sx0 (f32.load (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $sx1 (f32.load offset=4 (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $sx2 (f32.load offset=8 (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $sx3 (f32.load offset=12 (i32.add (local.get $scales) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $wj (i32.add (local.get $w) (i32.mul (local.get $j0) (local.get $kp))))
        (local.set $j (local.get $j0))
        (block $cols_done
          (loop $col
            (br_if $cols_done (i32.ge_u (local.get $j) (local.get $j1)))
            (call $dot4_a16 (local.get $q) (local.get $qs) (local.get $wj) (local.get $kp) (local.get $sums))
            (local.set $scale (f32.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $r (i32.add (local.get $y)
              (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
            (f32.store (local.get $r)
              (f32.mul (f32.mul (f32.load (local.get $sums)) (local.get $scale)) (local.get $sx0)))
            (if (i32.gt_u (local.get $rows) (i32.const 1)) (then
              (f32.store (i32.add (local.get $r) (i32.shl (local.get $n) (i32.const 2)))
                (f32.mul (f32.mul (f32.load offset=4 (local.get $sums)) (local.get $scale)) (local.get $sx1)))))
            (if (i32.gt_u (local.get $rows) (i32.const 2)) (then
              (f32.store (i32.add (local.get $r) (i32.shl (local.get $n) (i32.const 3)))
                (f32.mul (f32.mul (f32.load offset=8 (local.get $sums)) (local.get $scale)) (local.get $sx2)))))
            (if (i32.gt_u (local.get $rows) (i32.const 3)) (then
              (f32.store (i32.add (local.get $r) (i32.mul (local.get $n) (i32.const 12)))
                (f32.mul (f32.mul (f32.load offset=12 (local.get $sums)) (local.get $scale)) (local.get $sx3)))))
            (local.set $wj (i32.add (local.get $wj) (local.get $kp)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $col)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $block))))

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
