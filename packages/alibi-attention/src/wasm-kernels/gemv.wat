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

  ;; One row of x against four consecutive weight rows (stride $k floats): each x vector is loaded once for the
  ;; four, eight floats per step in two accumulators per row. Writes y, y + 4, y + 8, y + 12.
  (func $rows4 (param $x i32) (param $w i32) (param $k i32) (param $y i32)
    (local $rs i32) (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $end i32) (local $end8 i32)
    (local $xa v128) (local $xb v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $xs f32)
    (local.set $rs (i32.shl (local.get $k) (i32.const 2)))
    (local.set $w1 (i32.add (local.get $w) (local.get $rs)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $rs)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $rs)))
    (local.set $end8 (i32.add (local.get $x) (i32.shl (i32.and (local.get $k) (i32.const -8)) (i32.const 2))))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $k) (i32.const -4)) (i32.const 2))))
    (block $done8
      (loop $step8
        (br_if $done8 (i32.ge_u (local.get $x) (local.get $end8)))
        (local.set $xa (v128.load (local.get $x)))
        (local.set $xb (v128.load offset=16 (local.get $x)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $w)) (local.get $xa))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (local.get $w1)) (local.get $xa))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (local.get $w2)) (local.get $xa))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (local.get $w3)) (local.get $xa))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $w)) (local.get $xb))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $w1)) (local.get $xb))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $w2)) (local.get $xb))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $w3)) (local.get $xb))))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (local.set $w1 (i32.add (local.get $w1) (i32.const 32)))
        (local.set $w2 (i32.add (local.get $w2) (i32.const 32)))
        (local.set $w3 (i32.add (local.get $w3) (i32.const 32)))
        (br $step8)))
    ;; K % 8 >= 4: one more vector step.
    (if (i32.lt_u (local.get $x) (local.get $end))
      (then
        (local.set $xa (v128.load (local.get $x)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $w)) (local.get $xa))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (local.get $w1)) (local.get $xa))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (local.get $w2)) (local.get $xa))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (local.get $w3)) (local.get $xa))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $w1 (i32.add (local.get $w1) (i32.const 16)))
        (local.set $w2 (i32.add (local.get $w2) (i32.const 16)))
        (local.set $w3 (i32.add (local.get $w3) (i32.const 16)))))
    (local.set $s0 (call $hsum (f32x4.add (local.get $a0) (local.get $b0))))
    (local.set $s1 (call $hsum (f32x4.add (local.get $a1) (local.get $b1))))
    (local.set $s2 (call $hsum (f32x4.add (local.get $a2) (local.get $b2))))
    (local.set $s3 (call $hsum (f32x4.add (local.get $a3) (local.get $b3))))
    ;; K % 4 tail, scalar.
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $k) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xs (f32.load (local.get $x)))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (f32.load (local.get $w)) (local.get $xs))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (f32.load (local.get $w1)) (local.get $xs))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (f32.load (local.get $w2)) (local.get $xs))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (f32.load (local.get $w3)) (local.get $xs))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $w1 (i32.add (local.get $w1) (i32.const 4)))
        (local.set $w2 (i32.add (local.get $w2) (i32.const 4)))
        (local.set $w3 (i32.add (local.get $w3) (i32.const 4)))
        (br $tail)))
    (f32.store (local.get $y) (local.get $s0))
    (f32.store offset=4 (local.get $y) (local.get $s1))
    (f32.store offset=8 (local.get $y) (local.get $s2))
    (f32.store offset=12 (local.get $y) (local.get $s3)))

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

  ;; y = x . W^T. Addresses are bytes: $x [m, k], $w [n, k], $y [m, n], all float32 row-major. With one row of
  ;; x, four weight rows per call share its loads; with more, blocks of four x rows share each weight row (the
  ;; weight is streamed ceil(m / 4) times).
  (func (export "gemv")
    (param $x i32) (param $w i32) (param $y i32) (param $m i32) (param $n i32) (param $k i32)
    (local $j i32) (local $n4 i32) (local $rs i32) (local $ys i32) (local $i i32) (local $rows i32)
    (local $wj i32) (local $yj i32)
    (local.set $rs (i32.shl (local.get $k) (i32.const 2)))
    (local.set $ys (i32.shl (local.get $n) (i32.const 2)))
    (if (i32.eq (local.get $m) (i32.const 1))
      (then
        (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
        (block $quads_done
          (loop $quad
            (br_if $quads_done (i32.ge_u (local.get $j) (local.get $n4)))
            (call $rows4 (local.get $x) (local.get $w) (local.get $k) (local.get $y))
            (local.set $w (i32.add (local.get $w) (i32.shl (local.get $rs) (i32.const 2))))
            (local.set $y (i32.add (local.get $y) (i32.const 16)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $quad)))
        (block $singles_done
          (loop $single
            (br_if $singles_done (i32.ge_u (local.get $j) (local.get $n)))
            (call $xrows4 (local.get $x) (i32.const 1) (local.get $w) (local.get $k) (local.get $y) (local.get $ys))
            (local.set $w (i32.add (local.get $w) (local.get $rs)))
            (local.set $y (i32.add (local.get $y) (i32.const 4)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $single)))
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
