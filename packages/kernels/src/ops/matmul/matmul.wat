;; Batched float32 matmul over tfjs-wasm's heap: C[b] = A[b] x B[b], row-major, in place on tensor memory.
;; The module owns no memory and no data: it imports the backend's memory and works on byte addresses in it.
;; The build script also emits a variant importing a shared memory (the threaded tfjs-wasm build).
(module
  (import "env" "memory" (memory 0))

  ;; 4 rows x 8 columns of C held in eight f32x4 accumulators over the whole K loop. A is read one element at a
  ;; time and broadcast (load32_splat), so any A strides work (that is how transposeA is free); B rows are read
  ;; as two vectors. 11 live vectors fit the 16 SIMD registers of x64 without spilling.
  (func $tile4x8
    (param $a i32) (param $b i32) (param $c i32) (param $k i32)
    (param $rs i32) (param $cs i32) (param $ldb i32) (param $ldc i32)
    (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $a1 (i32.add (local.get $a) (local.get $rs)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $rs)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $rs)))
    (block $done
      (br_if $done (i32.eqz (local.get $k)))
      (loop $step
        (local.set $b0 (v128.load (local.get $b)))
        (local.set $b1 (v128.load offset=16 (local.get $b)))
        (local.set $x (v128.load32_splat (local.get $a)))
        (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a1)))
        (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a2)))
        (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a3)))
        (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $a (i32.add (local.get $a) (local.get $cs)))
        (local.set $a1 (i32.add (local.get $a1) (local.get $cs)))
        (local.set $a2 (i32.add (local.get $a2) (local.get $cs)))
        (local.set $a3 (i32.add (local.get $a3) (local.get $cs)))
        (local.set $b (i32.add (local.get $b) (local.get $ldb)))
        (br_if $step (local.tee $k (i32.sub (local.get $k) (i32.const 1))))))
    (v128.store (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c10))
    (v128.store offset=16 (local.get $c) (local.get $c11))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c20))
    (v128.store offset=16 (local.get $c) (local.get $c21))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c30))
    (v128.store offset=16 (local.get $c) (local.get $c31)))

  ;; The same for a 4 x 4 block (the column tail when 4 to 7 columns remain).
  (func $tile4x4
    (param $a i32) (param $b i32) (param $c i32) (param $k i32)
    (param $rs i32) (param $cs i32) (param $ldb i32) (param $ldc i32)
    (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $b0 v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $a1 (i32.add (local.get $a) (local.get $rs)))
    (local.set $a2 (i32.add (local.get $a1) (local.get $rs)))
    (local.set $a3 (i32.add (local.get $a2) (local.get $rs)))
    (block $done
      (br_if $done (i32.eqz (local.get $k)))
      (loop $step
        (local.set $b0 (v128.load (local.get $b)))
        (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (v128.load32_splat (local.get $a)) (local.get $b0))))
        (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (v128.load32_splat (local.get $a1)) (local.get $b0))))
        (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (v128.load32_splat (local.get $a2)) (local.get $b0))))
        (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (v128.load32_splat (local.get $a3)) (local.get $b0))))
        (local.set $a (i32.add (local.get $a) (local.get $cs)))
        (local.set $a1 (i32.add (local.get $a1) (local.get $cs)))
        (local.set $a2 (i32.add (local.get $a2) (local.get $cs)))
        (local.set $a3 (i32.add (local.get $a3) (local.get $cs)))
        (local.set $b (i32.add (local.get $b) (local.get $ldb)))
        (br_if $step (local.tee $k (i32.sub (local.get $k) (i32.const 1))))))
    (v128.store (local.get $c) (local.get $c0))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c1))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c2))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c3)))

  ;; Edges: a rows x cols block one row at a time, four columns per vector while four remain, then scalars.
  (func $edge
    (param $a i32) (param $b i32) (param $c i32) (param $rows i32) (param $cols i32) (param $k i32)
    (param $rs i32) (param $cs i32) (param $ldb i32) (param $ldc i32)
    (local $j i32) (local $p i32) (local $ap i32) (local $bp i32) (local $acc v128) (local $s f32)
    (block $rows_done
      (br_if $rows_done (i32.eqz (local.get $rows)))
      (loop $row
        (local.set $j (i32.const 0))
        (block $vec_done
          (loop $vec
            (br_if $vec_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $cols)))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $ap (local.get $a))
            (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $p (local.get $k))
            (block $k_done
              (br_if $k_done (i32.eqz (local.get $p)))
              (loop $kv
                (local.set $acc
                  (f32x4.add (local.get $acc)
                    (f32x4.mul (v128.load32_splat (local.get $ap)) (v128.load (local.get $bp)))))
                (local.set $ap (i32.add (local.get $ap) (local.get $cs)))
                (local.set $bp (i32.add (local.get $bp) (local.get $ldb)))
                (br_if $kv (local.tee $p (i32.sub (local.get $p) (i32.const 1))))))
            (v128.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $acc))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $vec)))
        (block $scalar_done
          (loop $scalar
            (br_if $scalar_done (i32.ge_u (local.get $j) (local.get $cols)))
            (local.set $s (f32.const 0))
            (local.set $ap (local.get $a))
            (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $p (local.get $k))
            (block $k_done
              (br_if $k_done (i32.eqz (local.get $p)))
              (loop $ks
                (local.set $s
                  (f32.add (local.get $s) (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))))
                (local.set $ap (i32.add (local.get $ap) (local.get $cs)))
                (local.set $bp (i32.add (local.get $bp) (local.get $ldb)))
                (br_if $ks (local.tee $p (i32.sub (local.get $p) (i32.const 1))))))
            (f32.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $scalar)))
        (local.set $a (i32.add (local.get $a) (local.get $rs)))
        (local.set $c (i32.add (local.get $c) (local.get $ldc)))
        (br_if $row (local.tee $rows (i32.sub (local.get $rows) (i32.const 1)))))))

  ;; One M x N product. $a, $b, $c are byte addresses; $rs/$cs are A's row and column strides in bytes
  ;; (K*4 and 4 for plain A; 4 and M*4 for transposed A). B is [K, N] and C is [M, N], both contiguous.
  (func $matmul1
    (param $a i32) (param $b i32) (param $c i32) (param $m i32) (param $n i32) (param $k i32)
    (param $rs i32) (param $cs i32)
    (local $ld i32) (local $m4 i32) (local $n8 i32) (local $i i32) (local $j i32) (local $jt i32)
    (local.set $ld (i32.shl (local.get $n) (i32.const 2)))
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (local.set $n8 (i32.and (local.get $n) (i32.const -8)))
    ;; Column panels outside, row blocks inside: a K x 8 panel of B stays in L1 while every row block uses it.
    (local.set $j (i32.const 0))
    (block $panels_done
      (loop $panel
        (br_if $panels_done (i32.ge_u (local.get $j) (local.get $n8)))
        (local.set $i (i32.const 0))
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m4)))
            (call $tile4x8
              (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs)))
              (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
              (i32.add (local.get $c)
                (i32.add (i32.mul (local.get $i) (local.get $ld)) (i32.shl (local.get $j) (i32.const 2))))
              (local.get $k) (local.get $rs) (local.get $cs) (local.get $ld) (local.get $ld))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $row)))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $panel)))
    (local.set $jt (local.get $n8))
    (if (i32.ge_u (i32.sub (local.get $n) (local.get $n8)) (i32.const 4))
      (then
        (local.set $i (i32.const 0))
        (block $rows_done
          (loop $row
            (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m4)))
            (call $tile4x4
              (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs)))
              (i32.add (local.get $b) (i32.shl (local.get $n8) (i32.const 2)))
              (i32.add (local.get $c)
                (i32.add (i32.mul (local.get $i) (local.get $ld)) (i32.shl (local.get $n8) (i32.const 2))))
              (local.get $k) (local.get $rs) (local.get $cs) (local.get $ld) (local.get $ld))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $row)))
        (local.set $jt (i32.add (local.get $n8) (i32.const 4)))))
    (if (i32.lt_u (local.get $jt) (local.get $n))
      (then
        (call $edge
          (local.get $a)
          (i32.add (local.get $b) (i32.shl (local.get $jt) (i32.const 2)))
          (i32.add (local.get $c) (i32.shl (local.get $jt) (i32.const 2)))
          (local.get $m4) (i32.sub (local.get $n) (local.get $jt)) (local.get $k)
          (local.get $rs) (local.get $cs) (local.get $ld) (local.get $ld))))
    (if (i32.lt_u (local.get $m4) (local.get $m))
      (then
        (call $edge
          (i32.add (local.get $a) (i32.mul (local.get $m4) (local.get $rs)))
          (local.get $b)
          (i32.add (local.get $c) (i32.mul (local.get $m4) (local.get $ld)))
          (i32.sub (local.get $m) (local.get $m4)) (local.get $n) (local.get $k)
          (local.get $rs) (local.get $cs) (local.get $ld) (local.get $ld)))))

  ;; $batch products. $strideA/$strideB are the per-product steps of A and B in bytes (0 broadcasts one
  ;; matrix to every product); C advances by M*N floats. $transA: A is stored [K, M] instead of [M, K].
  (func (export "matmul")
    (param $a i32) (param $b i32) (param $c i32) (param $batch i32)
    (param $m i32) (param $n i32) (param $k i32) (param $transA i32)
    (param $strideA i32) (param $strideB i32)
    (local $rs i32) (local $cs i32) (local $strideC i32)
    (if (local.get $transA)
      (then
        (local.set $rs (i32.const 4))
        (local.set $cs (i32.shl (local.get $m) (i32.const 2))))
      (else
        (local.set $rs (i32.shl (local.get $k) (i32.const 2)))
        (local.set $cs (i32.const 4))))
    (local.set $strideC (i32.shl (i32.mul (local.get $m) (local.get $n)) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $batch)))
      (loop $product
        (call $matmul1 (local.get $a) (local.get $b) (local.get $c)
          (local.get $m) (local.get $n) (local.get $k) (local.get $rs) (local.get $cs))
        (local.set $a (i32.add (local.get $a) (local.get $strideA)))
        (local.set $b (i32.add (local.get $b) (local.get $strideB)))
        (local.set $c (i32.add (local.get $c) (local.get $strideC)))
        (br_if $product (local.tee $batch (i32.sub (local.get $batch) (i32.const 1)))))))

  ;; dst[b] = src[b]^T for $batch row-major rows x cols matrices (materializes a transposed B operand).
  ;; 4 x 4 tiles are transposed in registers with two rounds of shuffles; the ragged edges go element-wise.
  (func (export "transpose")
    (param $src i32) (param $dst i32) (param $batch i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $r4 i32) (local $c4 i32) (local $s i32) (local $d i32)
    (local $ls i32) (local $ld i32) (local $size i32) (local $ib i32) (local $iend i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $t0 v128) (local $t1 v128)
    (local.set $ls (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $ld (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $size (i32.mul (local.get $ls) (local.get $rows)))
    (local.set $r4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $c4 (i32.and (local.get $cols) (i32.const -4)))
    (block $done
      (br_if $done (i32.eqz (local.get $batch)))
      (loop $matrix
        ;; Bands of 16 source rows: each 4-column step then writes 64 contiguous bytes (a cache line) to each of
        ;; four destination rows, instead of 16 bytes to lines far apart that get evicted before they fill.
        (local.set $ib (i32.const 0))
        (block $bands_done
          (loop $band
            (br_if $bands_done (i32.ge_u (local.get $ib) (local.get $r4)))
            (local.set $iend (i32.add (local.get $ib) (i32.const 16)))
            (local.set $iend
              (select (local.get $r4) (local.get $iend) (i32.lt_u (local.get $r4) (local.get $iend))))
            (local.set $j (i32.const 0))
            (block $cols_done
              (loop $column_step
                (br_if $cols_done (i32.ge_u (local.get $j) (local.get $c4)))
                (local.set $i (local.get $ib))
                (loop $tile
                (local.set $s (i32.add (local.get $src)
                  (i32.add (i32.mul (local.get $i) (local.get $ls)) (i32.shl (local.get $j) (i32.const 2)))))
                (local.set $x0 (v128.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (local.get $ls)))
                (local.set $x1 (v128.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (local.get $ls)))
                (local.set $x2 (v128.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (local.get $ls)))
                (local.set $x3 (v128.load (local.get $s)))
                ;; (a0 b0 a1 b1) (a2 b2 a3 b3) and the same for rows c, d; then pair them into columns.
                (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x0) (local.get $x1)))
                (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x0) (local.get $x1)))
                (local.set $x0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $x2) (local.get $x3)))
                (local.set $x1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $x2) (local.get $x3)))
                (local.set $d (i32.add (local.get $dst)
                  (i32.add (i32.mul (local.get $j) (local.get $ld)) (i32.shl (local.get $i) (i32.const 2)))))
                (v128.store (local.get $d)
                  (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $x0)))
                (local.set $d (i32.add (local.get $d) (local.get $ld)))
                (v128.store (local.get $d)
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $x0)))
                (local.set $d (i32.add (local.get $d) (local.get $ld)))
                (v128.store (local.get $d)
                  (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $x1)))
                (local.set $d (i32.add (local.get $d) (local.get $ld)))
                (v128.store (local.get $d)
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $x1)))
                  (br_if $tile (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $iend))))
                (local.set $j (i32.add (local.get $j) (i32.const 4)))
                (br $column_step)))
            (local.set $ib (i32.add (local.get $ib) (i32.const 16)))
            (br $band)))
        ;; Edges: rows [0, r4) x columns [c4, cols), then rows [r4, rows) x every column.
        (local.set $i (i32.const 0))
        (block $edge_done
          (loop $edge_row
            (br_if $edge_done (i32.ge_u (local.get $i) (local.get $rows)))
            (local.set $j (select (local.get $c4) (i32.const 0) (i32.lt_u (local.get $i) (local.get $r4))))
            (block $cols_done
              (loop $edge_col
                (br_if $cols_done (i32.ge_u (local.get $j) (local.get $cols)))
                (f32.store
                  (i32.add (local.get $dst)
                    (i32.add (i32.mul (local.get $j) (local.get $ld)) (i32.shl (local.get $i) (i32.const 2))))
                  (f32.load (i32.add (local.get $src)
                    (i32.add (i32.mul (local.get $i) (local.get $ls)) (i32.shl (local.get $j) (i32.const 2))))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $edge_col)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $edge_row)))
        (local.set $src (i32.add (local.get $src) (local.get $size)))
        (local.set $dst (i32.add (local.get $dst) (local.get $size)))
        (br_if $matrix (local.tee $batch (i32.sub (local.get $batch) (i32.const 1)))))))

  ;; dst[b][j][i][:] = src[b][i][j][:] for rows x cols blocks of $block floats: the [B, T, H, Dh] <-> [B, H, T, Dh]
  ;; head transposes, where each copied run is a contiguous Dh-float vector.
  (func (export "swap_blocks")
    (param $src i32) (param $dst i32) (param $batch i32) (param $rows i32) (param $cols i32) (param $block i32)
    (local $i i32) (local $j i32) (local $s i32) (local $d i32) (local $e i32) (local $e4 i32)
    (local $bytes i32) (local $size i32) (local $ld i32)
    (local.set $bytes (i32.shl (local.get $block) (i32.const 2)))
    (local.set $ld (i32.mul (local.get $rows) (local.get $bytes)))
    (local.set $size (i32.mul (i32.mul (local.get $rows) (local.get $cols)) (local.get $bytes)))
    (block $done
      (br_if $done (i32.or (i32.eqz (local.get $batch)) (i32.eqz (local.get $size))))
      (loop $matrix
        (local.set $s (local.get $src))
        (local.set $i (i32.const 0))
        (loop $row
          (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $i) (local.get $bytes))))
          (local.set $j (i32.const 0))
          (loop $col
            ;; copy one block: 16 bytes at a time, then the remaining floats
            (local.set $e (i32.add (local.get $s) (local.get $bytes)))
            (local.set $e4 (i32.sub (local.get $e) (i32.const 12)))
            (block $vec_done
              (loop $vec
                (br_if $vec_done (i32.ge_u (local.get $s) (local.get $e4)))
                (v128.store (local.get $d) (v128.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (i32.const 16)))
                (local.set $d (i32.add (local.get $d) (i32.const 16)))
                (br $vec)))
            (block $tail_done
              (loop $tail
                (br_if $tail_done (i32.ge_u (local.get $s) (local.get $e)))
                (f32.store (local.get $d) (f32.load (local.get $s)))
                (local.set $s (i32.add (local.get $s) (i32.const 4)))
                (local.set $d (i32.add (local.get $d) (i32.const 4)))
                (br $tail)))
            ;; next column block of this row: rows*block floats further in dst, minus the block just written
            (local.set $d (i32.sub (i32.add (local.get $d) (local.get $ld)) (local.get $bytes)))
            (br_if $col (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $cols))))
          (br_if $row (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $rows))))
        (local.set $src (i32.add (local.get $src) (local.get $size)))
        (local.set $dst (i32.add (local.get $dst) (local.get $size)))
        (br_if $matrix (local.tee $batch (i32.sub (local.get $batch) (i32.const 1)))))))

  ;; dst[i] += src[i] for n floats (summing the partial products of a split-K matmul).
  (func (export "add_into") (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $v_done
      (loop $v
        (br_if $v_done (i32.ge_u (local.get $dst) (local.get $end)))
        (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $v)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $s_done
      (loop $s
        (br_if $s_done (i32.ge_u (local.get $dst) (local.get $end)))
        (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $s))))

  ;; Copies n bytes (a contiguous block of rows into a fresh tensor).
  (func (export "copy") (param $dst i32) (param $src i32) (param $n i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $n)))
)
