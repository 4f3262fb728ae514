;; Matrix-vector products over tfjs-wasm's heap for decode steps: y[M, N] = x[M, K] . W[N, K]^T with W float32
;; rows (torch's [out, in] layout, the tied LM head's [vocab, d]) and M small. tfjs-wasm runs this as W . x^T on
;; XNNPACK, whose GEMM kernels are tiled for many rows of both operands and reach a fraction of the memory
;; bandwidth at M = 1; here every weight is loaded once, straight from its row, and multiplied by the few rows of x
;; held in L1.
(module
  (import "env" "memory" (memory 0))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; One row of x against one weight row, sixteen floats per step in four accumulators: the weight is read as
  ;; one sequential stream (x stays in L1), which the hardware prefetcher follows at full speed.
  (func $row1 (param $x i32) (param $w i32) (param $k i32) (result f32)
    (local $end i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32)
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $k) (i32.const -16)) (i32.const 2))))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $w)) (v128.load (local.get $x)))))
        (local.set $a1 (f32x4.add (local.get $a1)
          (f32x4.mul (v128.load offset=16 (local.get $w)) (v128.load offset=16 (local.get $x)))))
        (local.set $a2 (f32x4.add (local.get $a2)
          (f32x4.mul (v128.load offset=32 (local.get $w)) (v128.load offset=32 (local.get $x)))))
        (local.set $a3 (f32x4.add (local.get $a3)
          (f32x4.mul (v128.load offset=48 (local.get $w)) (v128.load offset=48 (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 64)))
        (local.set $x (i32.add (local.get $x) (i32.const 64)))
        (br $step)))
    ;; K % 16 >= 4: vector steps of four.
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $k) (i32.const 12)) (i32.const 2))))
    (block $done4
      (loop $step4
        (br_if $done4 (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $w)) (v128.load (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (br $step4)))
    (local.set $s (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1))
                                        (f32x4.add (local.get $a2) (local.get $a3)))))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $k) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $w)) (f32.load (local.get $x)))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (br $tail)))
    (local.get $s))

  ;; Four rows of x (stride $k floats; rows past $m repeat the last one) against one weight row: each weight
  ;; vector is loaded once for the four. Stores the first $m sums at y, y + $ys, ...
  (func $xrows4 (param $x i32) (param $m i32) (param $w i32) (param $k i32) (param $y i32) (param $ys i32)
    (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $rs i32) (local $end i32) (local $wv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $ws f32)
    (local.set $rs (i32.shl (local.get $k) (i32.const 2)))
    (local.set $x1 (select (i32.add (local.get $x) (local.get $rs)) (local.get $x) (i32.gt_u (local.get $m) (i32.const 1))))
    (local.set $x2 (select (i32.add (local.get $x1) (local.get $rs)) (local.get $x1) (i32.gt_u (local.get $m) (i32.const 2))))
    (local.set $x3 (select (i32.add (local.get $x2) (local.get $rs)) (local.get $x2) (i32.gt_u (local.get $m) (i32.const 3))))
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2))))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $wv (v128.load (local.get $w)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wv) (v128.load (local.get $x)))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wv) (v128.load (local.get $x1)))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $wv) (v128.load (local.get $x2)))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $wv) (v128.load (local.get $x3)))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $x1 (i32.add (local.get $x1) (i32.const 16)))
        (local.set $x2 (i32.add (local.get $x2) (i32.const 16)))
        (local.set $x3 (i32.add (local.get $x3) (i32.const 16)))
        (br $vec)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (local.set $s1 (call $hsum (local.get $a1)))
    (local.set $s2 (call $hsum (local.get $a2)))
    (local.set $s3 (call $hsum (local.get $a3)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $k) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $ws (f32.load (local.get $w)))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $ws) (f32.load (local.get $x)))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $ws) (f32.load (local.get $x1)))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $ws) (f32.load (local.get $x2)))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $ws) (f32.load (local.get $x3)))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $x1 (i32.add (local.get $x1) (i32.const 4)))
        (local.set $x2 (i32.add (local.get $x2) (i32.const 4)))
        (local.set $x3 (i32.add (local.get $x3) (i32.const 4)))
        (br $tail)))
    (f32.store (local.get $y) (local.get $s0))
    (if (i32.gt_u (local.get $m) (i32.const 1)) (then
      (f32.store (i32.add (local.get $y) (local.get $ys)) (local.get $s1))))
    (if (i32.gt_u (local.get $m) (i32.const 2)) (then
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $ys) (i32.const 1))) (local.get $s2))))
    (if (i32.gt_u (local.get $m) (i32.const 3)) (then
      (f32.store (i32.add (local.get $y) (i32.mul (local.get $ys) (i32.const 3))) (local.get $s3)))))

  ;; y = x . W^T. Addresses are bytes: $x [m, k], $w [n, k], $y [m, n], all float32 row-major. The weight is
  ;; read row after row, one sequential stream (interleaving several rows' streams measured 2x slower); with more
  ;; than one row of x, blocks of four x rows share each weight row (the weight is streamed ceil(m / 4) times).
  (func (export "gemv")
    (param $x i32) (param $w i32) (param $y i32) (param $m i32) (param $n i32) (param $k i32)
    (local $j i32) (local $rs i32) (local $ys i32) (local $i i32) (local $rows i32)
    (local $wj i32) (local $yj i32)
    (local.set $rs (i32.shl (local.get $k) (i32.const 2)))
    (local.set $ys (i32.shl (local.get $n) (i32.const 2)))
    (if (i32.eq (local.get $m) (i32.const 1))
      (then
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $j) (local.get $n)))
            (f32.store (local.get $y) (call $row1 (local.get $x) (local.get $w) (local.get $k)))
            (local.set $w (i32.add (local.get $w) (local.get $rs)))
            (local.set $y (i32.add (local.get $y) (i32.const 4)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $row)))
        (return)))
    (block $blocks_done
      (loop $block
        (br_if $blocks_done (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $rows (i32.sub (local.get $m) (local.get $i)))
        (if (i32.gt_u (local.get $rows) (i32.const 4)) (then (local.set $rows (i32.const 4))))
        (local.set $wj (local.get $w))
        (local.set $yj (i32.add (local.get $y) (i32.mul (local.get $i) (local.get $ys))))
        (local.set $j (i32.const 0))
        (block $cols_done
          (loop $col
            (br_if $cols_done (i32.ge_u (local.get $j) (local.get $n)))
            (call $xrows4 (i32.add (local.get $x) (i32.mul (local.get $i) (local.get $rs))) (local.get $rows)
              (local.get $wj) (local.get $k) (local.get $yj) (local.get $ys))
            (local.set $wj (i32.add (local.get $wj) (local.get $rs)))
            (local.set $yj (i32.add (local.get $yj) (i32.const 4)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $col)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $block))))
)
