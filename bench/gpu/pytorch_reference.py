#!/usr/bin/env python3
"""PyTorch reference for the GPU kit: the kit's MPT shapes trained and decoded in eager PyTorch on the same machine.

The model follows mptjs's MPT: decoder-only, ALiBi (llm-foundry's slopes, alibi_bias_max 8) instead of position
embeddings, QK-LayerNorm over the whole d_model vector, no biases anywhere (LayerNorms included), a GELU MLP of
expansion 4 and the LM head tied to the embedding; random weights.

Measured, each within a wall-clock budget (what does not fit is recorded as skipped):
- training steps (forward, cross-entropy, backward, global-norm clipping to 1.0, AdamW; fused where torch has it)
  in fp32 with TF32 off and in bf16 autocast (fp32 master weights), tokens/s from the median timed step;
- greedy decoding with a preallocated KV cache at batch 1 and 16: the prompt's forward and the first token count
  as prefill, the other tokens as decode (each step reads the chosen ids back, as a streaming server does);
  fp32, and bf16 with the weights cast to bf16.

Usage: pytorch_reference.py [--tiny] [--budget-s 100] [--out FILE] [--device auto|cuda|cpu] [--print-shapes]
The JSON goes to --out (rewritten after every measurement) and to stdout; progress lines go to stderr.
"""

import time

T0 = time.monotonic()  # before importing torch, which takes seconds: the budget counts from here

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# The kit's shapes (bench/gpu/shapes.mjs); the kit's test compares them through --print-shapes.
SHAPES = {
    "full": {
        "models": [
            {"name": "mpt-125m", "d_model": 768, "n_layers": 12, "n_heads": 12, "vocab": 50432, "seq": 2048, "batch": 4},
            {"name": "mpt-1b", "d_model": 2048, "n_layers": 24, "n_heads": 16, "vocab": 50432, "seq": 2048, "batch": 2},
        ],
        "decode": {"prompt": 128, "new_tokens": 32, "batches": [1, 16]},
        # Warm-up and timed training steps per model (mpt-1b takes four times as long a step).
        "train_steps": {"mpt-125m": (1, 3), "mpt-1b": (1, 2)},
    },
    "tiny": {
        "models": [
            {"name": "mpt-125m", "d_model": 64, "n_layers": 2, "n_heads": 4, "vocab": 512, "seq": 32, "batch": 2},
            {"name": "mpt-1b", "d_model": 64, "n_layers": 2, "n_heads": 8, "vocab": 512, "seq": 32, "batch": 2},
        ],
        "decode": {"prompt": 8, "new_tokens": 4, "batches": [1, 16]},
        "train_steps": {"mpt-125m": (1, 1), "mpt-1b": (1, 1)},
    },
}
PRECISIONS = ("fp32", "bf16")
ALIBI_BIAS_MAX = 8
LN_EPS = 1e-5
LR = 2e-4


def log(line):
    print(f"[pytorch] {line}", file=sys.stderr, flush=True)


def alibi_slopes(n_heads, alibi_bias_max=ALIBI_BIAS_MAX):
    """llm-foundry's gen_slopes: over the next power of two of heads, then odd positions before even ones."""
    n = 2 ** math.ceil(math.log2(n_heads))
    m = torch.arange(1, n + 1, dtype=torch.float32) * (alibi_bias_max / n)
    slopes = 1.0 / torch.pow(2, m)
    if n != n_heads:
        slopes = torch.cat([slopes[1::2], slopes[::2]])[:n_heads]
    return slopes


def alibi_causal_bias(n_heads, length, device):
    """[1, H, L, L]: slope * (j - i) for keys j <= query i, -inf above the diagonal."""
    pos = torch.arange(length, device=device)
    dist = (pos[None, :] - pos[:, None]).to(torch.float32)
    bias = alibi_slopes(n_heads).to(device)[:, None, None] * dist[None]
    bias = bias.masked_fill(pos[None, :] > pos[:, None], float("-inf"))
    return bias[None]


HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def autocast_dtype(device_type):
    """The autocast type in effect on this device type, or None."""
    try:  # torch >= 2.4 asks per device type
        return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    except (AttributeError, TypeError):
        pass
    if device_type == "cuda":
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
    return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None


def attention(q, k, v, bias):
    """Softmax attention of q [B, H, Tq, hd] over k, v [B, H, Tk, hd] with the additive bias [1, H, Tq, Tk], in
    the bias's type (the model's, or autocast's)."""
    dtype = bias.dtype
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    # torch < 2.0 has no SDPA: the same product written out.
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1])) + bias
    return torch.matmul(torch.softmax(scores.float(), dim=-1).to(dtype), v)


class LayerNormNoBias(nn.Module):
    def __init__(self, d, device):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, device=device))

    def forward(self, x):
        if x.dtype == self.weight.dtype:
            return F.layer_norm(x, (x.shape[-1],), self.weight, None, LN_EPS)
        # A bf16 activation under autocast: normalize in fp32 (CPU autocast of torch 1.x does not cast for us).
        return F.layer_norm(x.float(), (x.shape[-1],), self.weight.float(), None, LN_EPS).to(x.dtype)


class Block(nn.Module):
    def __init__(self, d, n_heads, device):
        super().__init__()
        self.n_heads = n_heads
        self.norm_1 = LayerNormNoBias(d, device)
        self.Wqkv = nn.Linear(d, 3 * d, bias=False, device=device)
        self.q_ln = LayerNormNoBias(d, device)
        self.k_ln = LayerNormNoBias(d, device)
        self.out_proj = nn.Linear(d, d, bias=False, device=device)
        self.norm_2 = LayerNormNoBias(d, device)
        self.up_proj = nn.Linear(d, 4 * d, bias=False, device=device)
        self.down_proj = nn.Linear(4 * d, d, bias=False, device=device)

    def heads(self, x):
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x, bias, cache=None, pos=0):
        b, t, d = x.shape
        q, k, v = self.Wqkv(self.norm_1(x)).split(d, dim=-1)
        q, k, v = self.heads(self.q_ln(q)), self.heads(self.k_ln(k)), self.heads(v)
        if cache is not None:
            # A preallocated [2, B, H, max_len, hd] cache: write this step's rows, attend over all rows so far.
            cache[0, :, :, pos : pos + t] = k
            cache[1, :, :, pos : pos + t] = v
            k, v = cache[0, :, :, : pos + t], cache[1, :, :, : pos + t]
        y = attention(q, k, v, bias).transpose(1, 2).reshape(b, t, d)
        x = x + self.out_proj(y)
        return x + self.down_proj(F.gelu(self.up_proj(self.norm_2(x))))


class MPT(nn.Module):
    def __init__(self, shape, device):
        super().__init__()
        d = shape["d_model"]
        self.shape = shape
        self.wte = nn.Embedding(shape["vocab"], d, device=device)
        self.blocks = nn.ModuleList(Block(d, shape["n_heads"], device) for _ in range(shape["n_layers"]))
        self.norm_f = LayerNormNoBias(d, device)
        # Random weights on the device (torch's default init draws on the device the module lives on).
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() > 1:
                    p.normal_(0.0, 0.02)
        self._bias = {}

    def bias(self, length, device, dtype):
        """The ALiBi + causal bias for `length` positions in `dtype`, built once per type rather than cast in every
        layer of every step (the last axis padded to a multiple of 16, the alignment fused attention kernels want
        of a mask's rows)."""
        key = (device, dtype)
        cached = self._bias.get(key)
        if cached is None or cached.shape[-1] < length:
            padded = (length + 15) // 16 * 16
            cached = alibi_causal_bias(self.shape["n_heads"], padded, device).to(dtype)
            self._bias[key] = cached
        return cached

    def forward(self, ids, caches=None, pos=0):
        t = ids.shape[1]
        dtype = autocast_dtype(ids.device.type) or self.wte.weight.dtype
        bias = self.bias(pos + t, ids.device, dtype)[:, :, pos : pos + t, : pos + t]
        x = self.wte(ids)
        for i, block in enumerate(self.blocks):
            x = block(x, bias, None if caches is None else caches[i], pos)
        # The tied head.
        return F.linear(self.norm_f(x), self.wte.weight)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def flops_per_token(shape, params):
    """llm-foundry's model FLOPs per token: 6 N + 12 L d seq (the kit's MFU formula, per token)."""
    return 6 * params + 12 * shape["n_layers"] * shape["d_model"] * shape["seq"]


def random_tokens(n, vocab, seed):
    """The kit's linear congruential tokens (model-stage.mjs randomTokens)."""
    s, out = seed, []
    for _ in range(n):
        s = (s * 1103515245 + 12345) % 2**31
        out.append(s % vocab)
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, precision):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def make_optimizer(model, device):
    """AdamW as the kit's trainer configures it (decoupled, no weight decay); fused where this torch has it."""
    kwargs = {"lr": LR, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.0}
    params = inspect.signature(torch.optim.AdamW).parameters
    if device.type == "cuda" and "fused" in params:
        try:
            return torch.optim.AdamW(model.parameters(), fused=True, **kwargs), "AdamW fused"
        except (RuntimeError, ValueError) as err:
            log(f"fused AdamW unavailable ({err}); using foreach")
    if "foreach" in params:
        return torch.optim.AdamW(model.parameters(), foreach=True, **kwargs), "AdamW foreach"
    return torch.optim.AdamW(model.parameters(), **kwargs), "AdamW"


class Budget:
    def __init__(self, seconds):
        self.end = T0 + seconds

    def left(self):
        return self.end - time.monotonic()


def measure_train(model, shape, precision, steps, budget, device):
    """Warm-up then timed training steps on one fixed batch; stops timing early when the budget runs out."""
    warmup, timed = steps
    b, t, vocab = shape["batch"], shape["seq"], shape["vocab"]
    ids = torch.tensor(random_tokens(b * t, vocab, 12345), device=device).view(b, t)
    # Next-token targets; the last position has none.
    targets = torch.cat([ids[:, 1:], torch.full((b, 1), -100, device=device, dtype=ids.dtype)], dim=1)
    optimizer, optimizer_name = make_optimizer(model, device)
    model.train()

    def step():
        with autocast(device, precision):
            logits = model(ids)
        loss = F.cross_entropy(logits.float().view(-1, vocab), targets.view(-1), ignore_index=-100)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss, norm

    times, warmup_s = [], 0.0
    loss = norm = None
    try:
        for i in range(warmup + timed):
            if i > warmup and budget.left() < 1.5 * max(times):
                break
            sync(device)
            t1 = time.perf_counter()
            loss, norm = step()
            sync(device)
            dt = time.perf_counter() - t1
            if i < warmup:
                warmup_s += dt
            else:
                times.append(dt)
        loss_value, norm_value = float(loss), float(norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            raise RuntimeError(f"non-finite loss ({loss_value}) or gradient norm ({norm_value})")
    finally:
        # A failed step (out of memory) may leave gradients behind; the next measurement starts without them.
        model.zero_grad(set_to_none=True)
        del optimizer
    step_s = statistics.median(times)
    params = num_params(model)
    return {
        "tokens_per_s": b * t / step_s,
        "step_ms": 1000 * step_s,
        "steps_timed": len(times),
        "step_ms_all": [1000 * x for x in times],
        "warmup_steps": warmup,
        "warmup_s": warmup_s,
        "model_tflops": flops_per_token(shape, params) * b * t / step_s / 1e12,
        "loss": loss_value,
        "optimizer": optimizer_name,
    }


@torch.inference_mode()
def decode_once(model, shape, prompt, new_tokens, dtype, device):
    """One greedy generation with a preallocated KV cache: seconds to the first token, and for the rest."""
    b = prompt.shape[0]
    hd = shape["d_model"] // shape["n_heads"]
    caches = [
        torch.empty(2, b, shape["n_heads"], prompt.shape[1] + new_tokens, hd, device=device, dtype=dtype)
        for _ in range(shape["n_layers"])
    ]
    sync(device)
    t1 = time.perf_counter()
    logits = model(prompt, caches, 0)
    nxt = logits[:, -1].argmax(-1)
    chosen = [nxt.tolist()]  # reading the ids back waits for the GPU
    first = time.perf_counter()
    pos = prompt.shape[1]
    for _ in range(new_tokens - 1):
        logits = model(nxt[:, None], caches, pos)
        nxt = logits[:, -1].argmax(-1)
        chosen.append(nxt.tolist())
        pos += 1
    end = time.perf_counter()
    return first - t1, end - first, chosen


def measure_decode(model, shape, batch, decode, dtype, device):
    vocab = shape["vocab"]
    # The kit's prompt for the first sequence (its decode runs batch 1), other tokens for the rest.
    tokens = random_tokens(decode["prompt"] * batch, vocab, 777)
    prompt = torch.tensor(tokens, device=device).view(batch, decode["prompt"])
    model.eval()
    # The first run pays for kernel selection and allocation.
    warm = decode_once(model, shape, prompt, decode["new_tokens"], dtype, device)
    prefill_s, decode_s, chosen = decode_once(model, shape, prompt, decode["new_tokens"], dtype, device)
    steps = decode["new_tokens"] - 1
    return {
        "tokens_per_s": batch * steps / decode_s,
        "per_sequence_tokens_per_s": steps / decode_s,
        "ms_per_token": 1000 * decode_s / steps,
        "prefill_tokens_per_s": batch * decode["prompt"] / prefill_s,
        "prefill_ms": 1000 * prefill_s,
        "warmup_s": warm[0] + warm[1],
        "prompt_tokens": decode["prompt"],
        "new_tokens": decode["new_tokens"],
        "first_tokens": chosen[0][:4],
    }


def describe_device(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the kit's tiny shapes (a quick check, CPU is fine)")
    parser.add_argument("--budget-s", type=float, default=100.0, help="wall-clock seconds for the whole run")
    parser.add_argument("--out", help="also write the JSON here, after every measurement")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--print-shapes", action="store_true", help="print the shapes as JSON and exit")
    args = parser.parse_args()
    if not args.budget_s > 0:
        parser.error(f"--budget-s must be a positive number of seconds, got {args.budget_s}")
    mode = "tiny" if args.tiny else "full"
    shapes = SHAPES[mode]
    if args.print_shapes:
        print(json.dumps(SHAPES))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.tiny and args.device == "auto":
        # A step of the full shapes takes minutes on a CPU: better no figures than a budget spent on one.
        log("torch sees no CUDA device: the full shapes need a GPU (--tiny or --device cpu to run on the CPU)")
        return 2
    # fp32 means fp32: no TF32 tensor cores for matmuls or convolutions (bf16 runs are unaffected).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    budget = Budget(args.budget_s)

    doc = {
        "kit": "mptjs-pytorch-reference",
        "mode": mode,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": describe_device(device),
        "device_type": device.type,
        "budget_s": args.budget_s,
        "settings": {
            "tf32": False,
            "attention": "scaled_dot_product_attention with the ALiBi + causal bias as attn_mask"
            if HAS_SDPA
            else "explicit softmax attention (this torch has no scaled_dot_product_attention)",
            "bf16_train": "autocast, fp32 master weights",
            "bf16_decode": "weights cast to bf16",
            "decode": "greedy, KV cache; tokens_per_s counts every sequence's tokens after the first",
        },
        "result": {"train": [], "decode": []},
        "complete": False,
    }

    def save():
        doc["elapsed_s"] = time.monotonic() - T0
        if args.out:
            # Written whole, then renamed: a run stopped mid-write still leaves the last complete file.
            with open(f"{args.out}.partial", "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            os.replace(f"{args.out}.partial", args.out)

    # Each measurement: what it needs left to be worth starting, estimated from what ran before.
    rate = {"s_per_flop": None}

    def run(kind, entry, needs_s, fn):
        left = budget.left()
        if needs_s is not None and left < needs_s:
            entry.update(status="skipped", note=f"out of time budget ({left:.0f} s left, needs about {needs_s:.0f} s)")
        else:
            log(f"{kind} {entry['shape']} {entry['precision']} batch {entry['batch']} ...")
            t1 = time.monotonic()
            try:
                entry.update(fn())
                entry["status"] = "ok"
            except Exception as err:  # noqa: BLE001 - an out-of-memory or kernel error fails one measurement
                entry.update(status="failed", error=f"{type(err).__name__}: {err}"[:2000])
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            entry["seconds"] = time.monotonic() - t1
        log(f"{kind} {entry['shape']} {entry['precision']} batch {entry['batch']}: {entry['status']} "
            + (f"{entry['tokens_per_s']:.1f} tokens/s" if entry["status"] == "ok" else entry.get("note", entry.get("error", ""))))
        doc["result"][kind].append(entry)
        save()
        return entry

    save()
    log(f"torch {torch.__version__} on {doc['device']}; budget {args.budget_s:.0f} s")
    for shape in shapes["models"]:
        model = None
        try:
            if budget.left() > 0:
                model = MPT(shape, device)
            params = num_params(model) if model is not None else None
            for precision in PRECISIONS:
                steps = shapes["train_steps"][shape["name"]]
                flops = flops_per_token(shape, params or 0) * shape["batch"] * shape["seq"]
                needs = rate["s_per_flop"] * flops * sum(steps) * 1.2 if rate["s_per_flop"] else 0
                entry = {"shape": shape["name"], "precision": precision, "batch": shape["batch"],
                         "seq": shape["seq"], "n_layers": shape["n_layers"], "params": params}
                if model is None:
                    entry.update(status="skipped", note="out of time budget")
                    doc["result"]["train"].append(entry)
                    continue
                done = run("train", entry, needs, lambda: measure_train(model, shape, precision, steps, budget, device))
                # fp32 is the slower: plan from it (bf16 on the same machine is faster, never slower, per FLOP).
                if done["status"] == "ok" and precision == "fp32":
                    rate["s_per_flop"] = done["step_ms"] / 1000 / flops
            for precision in PRECISIONS:
                dtype = torch.float32 if precision == "fp32" else torch.bfloat16
                if model is not None and precision == "bf16":
                    model.to(torch.bfloat16)
                for batch in shapes["decode"]["batches"]:
                    entry = {"shape": shape["name"], "precision": precision, "batch": batch}
                    if model is None:
                        entry.update(status="skipped", note="out of time budget")
                        doc["result"]["decode"].append(entry)
                        continue
                    run("decode", entry, 1.0,
                        lambda: measure_decode(model, shape, batch, shapes["decode"], dtype, device))
        finally:
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    entries = doc["result"]["train"] + doc["result"]["decode"]
    doc["complete"] = all(e["status"] == "ok" for e in entries)
    save()
    print(json.dumps(doc, indent=2))
    return 1 if any(e["status"] == "failed" for e in entries) else 0


if __name__ == "__main__":
    sys.exit(main())
