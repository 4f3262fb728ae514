;; Causal ALiBi attention of one query position per (batch, head) over the KV cache, for decode steps on
;; tfjs-wasm: scores, bias, softmax and the weighted sum of values in one kernel instead of six tfjs ops (two batch
;; matmuls with a transposed copy of the keys, scale, a bias built on the host, add, softmax). Same formula as the
;; plain-ops attention: s_j = (q . k_j) * scale + slope * (j - last) for keys j <= last, softmax over them.
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

  ;; Dot product of two float32 rows of $n values.
  (func $dot (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $end i32) (local $acc v128) (local $s f32)
    (local.set $end (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (v128.load (local.get $a)) (v128.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br $step)))
    (local.set $s (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $tail)))
    (local.get $s))

  ;; out[r, 0, :] for r < $rows (= batch * heads): q [rows, 1, dh], k and v [rows, tk, dh], out [rows, 1, dh].
  ;; $scratch holds tk floats of scores; $slopes is one float per head (0: no ALiBi). Keys past $last are not
  ;; visible (causal), nor keys j whose $mask [batch, tk] value is 0 (left padding; $mask 0: no mask). Their
  ;; weight is exactly 0 (not exp of a large negative score), as in the plain ops' softmax. Addresses are bytes.
  (func (export "decode_attention")
    (param $q i32) (param $k i32) (param $v i32) (param $slopes i32) (param $out i32) (param $scratch i32)
    (param $rows i32) (param $heads i32) (param $tk i32) (param $dh i32) (param $scale f32) (param $last i32)
    (param $mask i32)
    (local $r i32) (local $j i32) (local $n i32) (local $row_bytes i32) (local $kr i32) (local $vr i32)
    (local $slope f32) (local $s f32) (local $max f32) (local $sum f32) (local $i i32) (local $pv v128)
    (local $o i32) (local $dh4 i32) (local $mrow i32)
    (local.set $row_bytes (i32.shl (local.get $dh) (i32.const 2)))
    (local.set $dh4 (i32.and (local.get $dh) (i32.const -4)))
    (local.set $n (select (local.get $tk) (i32.add (local.get $last) (i32.const 1))
      (i32.lt_s (local.get $tk) (i32.add (local.get $last) (i32.const 1)))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $slope (select
          (f32.load (i32.add (local.get $slopes) (i32.shl (i32.rem_u (local.get $r) (local.get $heads)) (i32.const 2))))
          (f32.const 0)
          (local.get $slopes)))
        (local.set $kr (i32.add (local.get $k) (i32.mul (i32.mul (local.get $r) (local.get $tk)) (local.get $row_bytes))))
        (local.set $vr (i32.add (local.get $v) (i32.mul (i32.mul (local.get $r) (local.get $tk)) (local.get $row_bytes))))
        ;; this row's batch entry's mask row (0: none)
        (local.set $mrow (select
          (i32.add (local.get $mask)
            (i32.shl (i32.mul (i32.div_u (local.get $r) (local.get $heads)) (local.get $tk)) (i32.const 2)))
          (i32.const 0)
          (local.get $mask)))
        ;; scores and their max; a hidden key scores -inf
        (local.set $max (f32.const -inf))
        (local.set $j (i32.const 0))
        (block $s_done
          (loop $score
            (br_if $s_done (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $s (f32.add
              (f32.mul (call $dot (local.get $q) (i32.add (local.get $kr) (i32.mul (local.get $j) (local.get $row_bytes)))
                (local.get $dh)) (local.get $scale))
              (f32.mul (local.get $slope) (f32.convert_i32_s (i32.sub (local.get $j) (local.get $last))))))
            (if (local.get $mrow) (then
              (if (f32.eq (f32.load (i32.add (local.get $mrow) (i32.shl (local.get $j) (i32.const 2)))) (f32.const 0))
                (then (local.set $s (f32.const -inf))))))
            (f32.store (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
            (local.set $max (f32.max (local.get $max) (local.get $s)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $score)))
        ;; exponentials and their sum
        (local.set $sum (f32.const 0))
        (local.set $j (i32.const 0))
        (block $e_done
          (loop $expo
            (br_if $e_done (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $s (f32.load (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $s (select
              (f32.const 0)
              (call $exp1 (f32.sub (local.get $s) (local.get $max)))
              (f32.eq (local.get $s) (f32.const -inf))))
            (f32.store (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
            (local.set $sum (f32.add (local.get $sum) (local.get $s)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $expo)))
        ;; out = sum_j (e_j / sum) v_j
        (local.set $o (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $row_bytes))))
        (memory.fill (local.get $o) (i32.const 0) (local.get $row_bytes))
        (local.set $j (i32.const 0))
        (block $v_done
          (loop $value
            (br_if $v_done (i32.ge_s (local.get $j) (local.get $n)))
            ;; (every key hidden: a zero row rather than 0/0)
            (local.set $s (select
              (f32.const 0)
              (f32.div (f32.load (i32.add (local.get $scratch) (i32.shl (local.get $j) (i32.const 2)))) (local.get $sum))
              (f32.eq (local.get $sum) (f32.const 0))))
            (local.set $pv (f32x4.splat (local.get $s)))
            (local.set $i (i32.const 0))
            (block $vec_done
              (loop $vec
                (br_if $vec_done (i32.ge_u (local.get $i) (local.get $dh4)))
                (v128.store (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))
                  (f32x4.add (v128.load (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2))))
                    (f32x4.mul (local.get $pv) (v128.load (i32.add (local.get $vr) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                (br $vec)))
            (block $t_done
              (loop $t
                (br_if $t_done (i32.ge_u (local.get $i) (local.get $dh)))
                (f32.store (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2)))
                  (f32.add (f32.load (i32.add (local.get $o) (i32.shl (local.get $i) (i32.const 2))))
                    (f32.mul (local.get $s) (f32.load (i32.add (local.get $vr) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $t)))
            (local.set $vr (i32.add (local.get $vr) (local.get $row_bytes)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $value)))
        (local.set $q (i32.add (local.get $q) (local.get $row_bytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))
)
