;; Decoupled AdamW's update of one parameter tensor in one pass (Composer's DecoupledAdamW, as the trainer's
;; tfjs-op version computes it, in the same order of operations so the results are the same floats):
;;   m' = m b1 + g (1 - b1);  v' = v b2 + g^2 (1 - b2)
;;   p' = p decay - (m' / (sqrt(v') / sqrt(bc2) + eps)) * (lr / bc1)
;; Reads p, g, m, v and writes p', m', v' (each may alias its input): 7 streams instead of ~13 tfjs passes.
(module
  (import "env" "memory" (memory 0))

  (func $update
    (param $p v128) (param $g v128) (param $m v128) (param $v v128)
    (param $b1 v128) (param $c1 v128) (param $b2 v128) (param $c2 v128)
    (param $sbc2 v128) (param $eps v128) (param $step v128) (param $decay v128)
    (result v128 v128 v128)
    (local $m1 v128) (local $v1 v128)
    (local.set $m1 (f32x4.add (f32x4.mul (local.get $m) (local.get $b1)) (f32x4.mul (local.get $g) (local.get $c1))))
    (local.set $v1 (f32x4.add (f32x4.mul (local.get $v) (local.get $b2))
                              (f32x4.mul (f32x4.mul (local.get $g) (local.get $g)) (local.get $c2))))
    (f32x4.sub (f32x4.mul (local.get $p) (local.get $decay))
      (f32x4.mul
        (f32x4.div (local.get $m1)
          (f32x4.add (f32x4.div (f32x4.sqrt (local.get $v1)) (local.get $sbc2)) (local.get $eps)))
        (local.get $step)))
    (local.get $m1)
    (local.get $v1))

  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $po i32) (param $mo i32) (param $vo i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $sbc2 f32) (param $eps f32) (param $step f32) (param $decay f32)
    (local $i i32) (local $end i32) (local $o i32) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local $vb1 v128) (local $vc1 v128) (local $vb2 v128) (local $vc2 v128)
    (local $vsbc2 v128) (local $veps v128) (local $vstep v128) (local $vdecay v128)
    (local.set $vb1 (f32x4.splat (local.get $b1)))
    (local.set $vc1 (f32x4.splat (local.get $c1)))
    (local.set $vb2 (f32x4.splat (local.get $b2)))
    (local.set $vc2 (f32x4.splat (local.get $c2)))
    (local.set $vsbc2 (f32x4.splat (local.get $sbc2)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $vstep (f32x4.splat (local.get $step)))
    (local.set $vdecay (f32x4.splat (local.get $decay)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $v4
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (call $update
          (v128.load (i32.add (local.get $p) (local.get $o))) (v128.load (i32.add (local.get $g) (local.get $o)))
          (v128.load (i32.add (local.get $m) (local.get $o))) (v128.load (i32.add (local.get $v) (local.get $o)))
          (local.get $vb1) (local.get $vc1) (local.get $vb2) (local.get $vc2)
          (local.get $vsbc2) (local.get $veps) (local.get $vstep) (local.get $vdecay))
        (local.set $r3) (local.set $r2) (local.set $r1)
        (v128.store (i32.add (local.get $po) (local.get $o)) (local.get $r1))
        (v128.store (i32.add (local.get $mo) (local.get $o)) (local.get $r2))
        (v128.store (i32.add (local.get $vo) (local.get $o)) (local.get $r3))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $v4)))
    ;; The tail one float at a time, through the same vector code (lane 0).
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $s
        (br_if $tail_done (i32.ge_u (local.get $o) (local.get $end)))
        (call $update
          (f32x4.splat (f32.load (i32.add (local.get $p) (local.get $o))))
          (f32x4.splat (f32.load (i32.add (local.get $g) (local.get $o))))
          (f32x4.splat (f32.load (i32.add (local.get $m) (local.get $o))))
          (f32x4.splat (f32.load (i32.add (local.get $v) (local.get $o))))
          (local.get $vb1) (local.get $vc1) (local.get $vb2) (local.get $vc2)
          (local.get $vsbc2) (local.get $veps) (local.get $vstep) (local.get $vdecay))
        (local.set $r3) (local.set $r2) (local.set $r1)
        (f32.store (i32.add (local.get $po) (local.get $o)) (f32x4.extract_lane 0 (local.get $r1)))
        (f32.store (i32.add (local.get $mo) (local.get $o)) (f32x4.extract_lane 0 (local.get $r2)))
        (f32.store (i32.add (local.get $vo) (local.get $o)) (f32x4.extract_lane 0 (local.get $r3)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $s))))
)
