;; Softmax cross-entropy over the columns of a row-major z[rows, cols] (rows = classes, cols = positions): the
;; layout an LM head produces as (W h^T), so the logits are never transposed. Each pass reads z row by row and
;; keeps one accumulator per column in memory (cols floats, L1-resident), so every access is sequential.
(module
  (import "env" "memory" (memory 0))

  ;; exp(x) for four lanes, Cephes' expf: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r and
  ;; 2^n built in the exponent bits. Relative error ~2e-7; x is clamped to [-87.3, 88.3] (no inf, no denormals).
  (func $vexp (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654))
                             (v128.const f32x4 88.37626 88.37626 88.37626 88.37626)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
    ;; ln2 split in two so n * ln2_hi is exact.
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $n) (v128.const f32x4 2.12194440e-4 2.12194440e-4 2.12194440e-4 2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $r)) (local.get $r)) (local.get $r))
                             (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))

  ;; exp of one float through the vector path (the column tail).
  (func $exp1 (param $x f32) (result f32)
    (f32x4.extract_lane 0 (call $vexp (f32x4.splat (local.get $x)))))

  ;; stats[0, c] = max_r z[r, c]; stats[1, c] = sum_r exp(z[r, c] - stats[0, c]); stats[2, c] = z[pick[c], c], or 0
  ;; where pick[c] < 0. pick is i32 [cols]; rows >= 1.
  (func (export "col_stats")
    (param $z i32) (param $rows i32) (param $cols i32) (param $pick i32) (param $stats i32)
    (local $mx i32) (local $sm i32) (local $pk i32) (local $row i32) (local $r i32) (local $c i32) (local $vend i32)
    (local $p i32) (local $t i32) (local $ex v128) (local $en v128) (local $er v128) (local $ep v128)
    (local.set $mx (local.get $stats))
    (local.set $sm (i32.add (local.get $stats) (i32.shl (local.get $cols) (i32.const 2))))
    (local.set $pk (i32.add (local.get $sm) (i32.shl (local.get $cols) (i32.const 2))))
    (local.set $vend (i32.and (local.get $cols) (i32.const -4)))
    ;; max: start from row 0.
    (memory.copy (local.get $mx) (local.get $z) (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $r (i32.const 1))
    (block $max_done
      (loop $max_rows
        (br_if $max_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.add (local.get $z) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
        (local.set $c (i32.const 0))
        (block $v_done
          (loop $v
            (br_if $v_done (i32.ge_u (local.get $c) (local.get $vend)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            (v128.store (i32.add (local.get $mx) (local.get $p))
              (f32x4.max (v128.load (i32.add (local.get $mx) (local.get $p)))
                         (v128.load (i32.add (local.get $row) (local.get $p)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $v)))
        (block $s_done
          (loop $s
            (br_if $s_done (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            (f32.store (i32.add (local.get $mx) (local.get $p))
              (f32.max (f32.load (i32.add (local.get $mx) (local.get $p)))
                       (f32.load (i32.add (local.get $row) (local.get $p)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $s)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $max_rows)))
    ;; sum of exponentials.
    (memory.fill (local.get $sm) (i32.const 0) (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $sum_done
      (loop $sum_rows
        (br_if $sum_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.add (local.get $z) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
        (local.set $c (i32.const 0))
        (block $v_done
          (loop $v
            (br_if $v_done (i32.ge_u (local.get $c) (local.get $vend)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            ;; exp inlined (as $vexp computes it): a call per vector costs as much as the polynomial.
            (local.set $ex (f32x4.min (f32x4.max (f32x4.sub (v128.load (i32.add (local.get $row) (local.get $p)))
                                                  (v128.load (i32.add (local.get $mx) (local.get $p)))) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654)) (v128.const f32x4 88.37626 88.37626 88.37626 88.37626)))
            (local.set $en (f32x4.nearest (f32x4.mul (local.get $ex) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
            (local.set $er (f32x4.add (f32x4.sub (local.get $ex) (f32x4.mul (local.get $en) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
                                      (f32x4.mul (local.get $en) (v128.const f32x4 2.12194440e-4 2.12194440e-4 2.12194440e-4 2.12194440e-4))))
            (local.set $ep (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $er)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
            (local.set $ep (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $ep) (local.get $er)) (local.get $er)) (local.get $er))
                                      (v128.const f32x4 1 1 1 1)))
            (local.set $ex (f32x4.mul (local.get $ep)
              (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $en)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))
            (v128.store (i32.add (local.get $sm) (local.get $p))
              (f32x4.add (v128.load (i32.add (local.get $sm) (local.get $p))) (local.get $ex)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $v)))
        (block $s_done
          (loop $s
            (br_if $s_done (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            (f32.store (i32.add (local.get $sm) (local.get $p))
              (f32.add (f32.load (i32.add (local.get $sm) (local.get $p)))
                (call $exp1 (f32.sub (f32.load (i32.add (local.get $row) (local.get $p)))
                                     (f32.load (i32.add (local.get $mx) (local.get $p)))))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $s)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $sum_rows)))
    ;; the picked logit of each column.
    (local.set $c (i32.const 0))
    (block $pick_done
      (loop $pick_cols
        (br_if $pick_done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $p (i32.shl (local.get $c) (i32.const 2)))
        (local.set $t (i32.load (i32.add (local.get $pick) (local.get $p))))
        (f32.store (i32.add (local.get $pk) (local.get $p))
          (if (result f32) (i32.and (i32.ge_s (local.get $t) (i32.const 0)) (i32.lt_s (local.get $t) (local.get $rows)))
            (then (f32.load (i32.add (local.get $z)
                    (i32.shl (i32.add (i32.mul (local.get $t) (local.get $cols)) (local.get $c)) (i32.const 2)))))
            (else (f32.const 0))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $pick_cols))))

  ;; out[r, c] = (exp(z[r, c] - lse[c]) - [r == pick[c]]) * scale[c]: the gradient of the cross-entropy with
  ;; respect to z, each column's softmax minus its one-hot target, scaled. out may be z (in place).
  (func (export "col_grad")
    (param $z i32) (param $out i32) (param $rows i32) (param $cols i32)
    (param $lse i32) (param $scale i32) (param $pick i32)
    (local $r i32) (local $c i32) (local $vend i32) (local $p i32) (local $src i32) (local $dst i32) (local $t i32)
    (local $q i32) (local $ex v128) (local $en v128) (local $er v128) (local $ep v128)
    (local.set $vend (i32.and (local.get $cols) (i32.const -4)))
    (local.set $r (i32.const 0))
    (block $rows_done
      (loop $rows_loop
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $src (i32.add (local.get $z) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
        (local.set $dst (i32.add (local.get $out) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
        (local.set $c (i32.const 0))
        (block $v_done
          (loop $v
            (br_if $v_done (i32.ge_u (local.get $c) (local.get $vend)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            (local.set $ex (f32x4.min (f32x4.max (f32x4.sub (v128.load (i32.add (local.get $src) (local.get $p)))
                                                  (v128.load (i32.add (local.get $lse) (local.get $p)))) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654)) (v128.const f32x4 88.37626 88.37626 88.37626 88.37626)))
            (local.set $en (f32x4.nearest (f32x4.mul (local.get $ex) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))))
            (local.set $er (f32x4.add (f32x4.sub (local.get $ex) (f32x4.mul (local.get $en) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
                                      (f32x4.mul (local.get $en) (v128.const f32x4 2.12194440e-4 2.12194440e-4 2.12194440e-4 2.12194440e-4))))
            (local.set $ep (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $er)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
            (local.set $ep (f32x4.add (f32x4.mul (local.get $ep) (local.get $er)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
            (local.set $ep (f32x4.add (f32x4.add (f32x4.mul (f32x4.mul (local.get $ep) (local.get $er)) (local.get $er)) (local.get $er))
                                      (v128.const f32x4 1 1 1 1)))
            (local.set $ex (f32x4.mul (local.get $ep)
              (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $en)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))
            (v128.store (i32.add (local.get $dst) (local.get $p))
              (f32x4.mul (local.get $ex) (v128.load (i32.add (local.get $scale) (local.get $p)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $v)))
        (block $s_done
          (loop $s
            (br_if $s_done (i32.ge_u (local.get $c) (local.get $cols)))
            (local.set $p (i32.shl (local.get $c) (i32.const 2)))
            (f32.store (i32.add (local.get $dst) (local.get $p))
              (f32.mul
                (call $exp1 (f32.sub (f32.load (i32.add (local.get $src) (local.get $p)))
                                     (f32.load (i32.add (local.get $lse) (local.get $p)))))
                (f32.load (i32.add (local.get $scale) (local.get $p)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $s)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows_loop)))
    ;; minus the one-hot, one element per column.
    (local.set $c (i32.const 0))
    (block $pick_done
      (loop $pick_cols
        (br_if $pick_done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $p (i32.shl (local.get $c) (i32.const 2)))
        (local.set $t (i32.load (i32.add (local.get $pick) (local.get $p))))
        (if (i32.and (i32.ge_s (local.get $t) (i32.const 0)) (i32.lt_s (local.get $t) (local.get $rows)))
          (then
            (local.set $q (i32.add (local.get $out)
              (i32.shl (i32.add (i32.mul (local.get $t) (local.get $cols)) (local.get $c)) (i32.const 2))))
            (f32.store (local.get $q)
              (f32.sub (f32.load (local.get $q)) (f32.load (i32.add (local.get $scale) (local.get $p)))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $pick_cols))))
)
