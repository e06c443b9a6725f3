#!/usr/bin/python3
"""torch_capture.py - capture a speculative-decoding trace from PyTorch models.

Runs a draft and a target model over prompts the way ahasd-capture does
(capture/README.md) and writes the JSON-lines schema of capture/IMPORT.md,
continuations included; `ahasd-capture import OUT.jsonl -o OUT.msgpack`
turns it into a trace. Both models read the target's TRUE token stream. At
each generated position p:

- greedy (temperature 0): the target's token is its argmax; entropy and
  top-1 are of the draft's softmax (T = 1); a_p = 1 if the draft's argmax
  is the target's token, else 0;
- sampled: both distributions use the same temperature and top-p; target
  and draft tokens are drawn with the counter-based generator of
  ahasd-capture, keyed by (seed, sequence, position, stream); entropy and
  top-1 are of the draft's sampling distribution; a_p = sum_x min(p_t, p_d);
- wherever a_p < 1: the entropies of the draft's own continuation for K
  steps after it drafted its token at p.

Generation stops after max_new_tokens, after a stop token (included), and
at context - prompt_len - K + 1 tokens so the last continuation fits.

Models are adapters with one method, logits(tokens, start) -> [len, V]:
feed tokens at positions start.. after the prefix fed before (anything the
model holds from start on is dropped). Three are provided:

- CachedLM(module): module(tokens [1, T], start_pos) -> logits [1, T, V],
  keeping its own KV cache (the Meta llama reference convention, and
  torch_llama2c.Llama2c);
- StatelessLM(module): any torch.nn.Module mapping input_ids [1, T] to
  logits [1, T, V] (or an object with .logits); the whole prefix is
  recomputed each call, so it is slow but needs nothing from the model;
- HFLM(model): a Hugging Face transformers causal LM, with its
  past_key_values cropped to the prefix (needs the transformers package).

Command line (greedy stories260K with layer 3 skipped, as ahasd-capture):

    /usr/bin/python3 capture/torch_capture.py \\
        --target llama2c:../shared/models/stories260K/stories260K.bin \\
        --draft-skip-layers 3 -p capture/prompts/stories.txt -o run.jsonl

or with transformers models (any two sharing a tokenizer):

    /usr/bin/python3 capture/torch_capture.py --target hf:MODEL \\
        --draft hf:DRAFT -p prompts.txt -o run.jsonl

From Python: capture(target, draft, prompts, out, models=...) with any two
adapters; see the function.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys

import torch

TOOL = "torch_capture.py"

# ---------------------------------------------------------------------------
# model adapters


def _logits_of(out):
    return out.logits if hasattr(out, "logits") else out


class CachedLM:
    """A module with its own KV cache: module(tokens [1, T], start_pos)."""

    def __init__(self, module, context=None):
        self.module = module
        self.context = context

    def logits(self, tokens, start):
        ids = torch.tensor([tokens], dtype=torch.long)
        with torch.no_grad():
            return _logits_of(self.module(ids, start))[0]


class StatelessLM:
    """Any module mapping input_ids [1, T] to logits: recomputes the prefix."""

    def __init__(self, module, context=None):
        self.module = module
        self.context = context
        self.ids = []

    def logits(self, tokens, start):
        if start > len(self.ids):
            raise ValueError(f"start {start} past the {len(self.ids)} tokens fed")
        self.ids = self.ids[:start] + list(tokens)
        ids = torch.tensor([self.ids], dtype=torch.long)
        with torch.no_grad():
            return _logits_of(self.module(ids))[0, start:]


class HFLM:
    """A transformers causal LM; its KV cache is cropped to the prefix."""

    def __init__(self, model):
        self.model = model.eval()
        self.context = getattr(model.config, "max_position_embeddings", None)
        self.cache = None
        self.n = 0

    def _crop(self, start):
        if self.cache is None or start >= self.n:
            return
        if hasattr(self.cache, "crop"):          # transformers Cache objects
            self.cache.crop(start)
        else:                                    # legacy tuple of (k, v)
            self.cache = tuple((k[..., :start, :], v[..., :start, :])
                               for k, v in self.cache)
        self.n = start

    def logits(self, tokens, start):
        if start > self.n:
            raise ValueError(f"start {start} past the {self.n} tokens fed")
        if start == 0:
            self.cache, self.n = None, 0
        self._crop(start)
        ids = torch.tensor([tokens], dtype=torch.long)
        pos = torch.arange(start, start + len(tokens))[None]
        with torch.no_grad():
            out = self.model(input_ids=ids, past_key_values=self.cache,
                             position_ids=pos, use_cache=True)
        self.cache = out.past_key_values
        self.n = start + len(tokens)
        return out.logits[0]


def hf_describe(model, name):
    """The JSON-lines MODEL object of a transformers model: its dims and the
    llama op list (right for llama-family decoders; give an explicit op list
    for other architectures, capture/IMPORT.md)."""
    c = model.config
    p = next(model.parameters())
    return {"name": name[:63], "dim": c.hidden_size,
            "hidden_dim": c.intermediate_size,
            "n_layers": c.num_hidden_layers,
            "n_heads": c.num_attention_heads,
            "n_kv_heads": getattr(c, "num_key_value_heads", None)
            or c.num_attention_heads,
            "vocab_size": c.vocab_size,
            "seq_len": c.max_position_embeddings,
            "weight_bits": p.element_size() * 8, "ops": "llama"}


# ---------------------------------------------------------------------------
# distributions and the counter-based generator of ahasd-capture

M64 = (1 << 64) - 1
RNG_TARGET, RNG_DRAFT, RNG_CONT = 0, 1, 2


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def rng_uniform(seed, a, b, stream):
    """Uniform in [0, 1) from (seed, a, b, stream): llm_rng_uniform()."""
    h = _splitmix64(seed & M64)
    h = _splitmix64(h ^ (a & M64))
    h = _splitmix64(h ^ ((b * 0x100000001B3) & M64))
    h = _splitmix64(h ^ ((stream + 0x51ED27) & M64))
    return (h >> 11) * (1.0 / 9007199254740992.0)


def dist(logits, temperature, top_p):
    """The distribution a capture records (float32, as llm_softmax and
    llm_top_p): greedy the plain softmax (T = 1); sampled with temperature,
    then the smallest set of most likely tokens (ties: lower id) whose mass
    reaches top_p, renormalized."""
    t = temperature if temperature > 0 else 1.0
    z = logits.double()
    e = torch.exp((z - z.max()) / t)
    p = (e.float().double() / e.sum()).float()
    if temperature > 0 and top_p < 1.0:
        order = sorted(range(p.numel()), key=lambda i: (-float(p[i]), i))
        cum, keep = 0.0, len(order)
        for n, i in enumerate(order):
            cum += float(p[i])
            if cum >= top_p:
                keep = n + 1
                break
        kept = torch.tensor(order[:keep])
        q = torch.zeros_like(p)
        q[kept] = (p[kept].double() / p[kept].double().sum()).float()
        p = q
    return p


def entropy(p):
    """Entropy in nats of a float32 distribution, summed in double."""
    q = p.double()
    q = q[q > 0]
    return float(-(q * torch.log(q)).sum())


def sample(p, u):
    """Inverse CDF over the non-zero entries (llm_sample)."""
    cdf = torch.cumsum(p.double(), 0)
    nz = torch.nonzero(p > 0).view(-1)
    hit = nz[cdf[nz] > u]
    return int(hit[0]) if hit.numel() else int(nz[-1])


def argmax(p):
    """The first index of the maximum (llm_argmax)."""
    return int(torch.argmax(p))


def overlap(p, q):
    """sum_x min(p(x), q(x)) clamped to [0, 1]."""
    return min(1.0, max(0.0, float(torch.minimum(p, q).double().sum())))


def f32(x):
    """x rounded to float32, as the trace stores it (printed exactly)."""
    return float(torch.tensor(x, dtype=torch.float32))


# ---------------------------------------------------------------------------
# the capture


def capture_sequence(target, draft, prompt, seq, lookahead=16,
                     max_new_tokens=256, temperature=0.0, top_p=1.0, seed=0,
                     stop=(1, 2), context=None):
    """One sequence record (a dict of the JSON-lines schema) for prompt (a
    list of token ids, BOS included)."""
    K, P = lookahead, len(prompt)
    sampled = temperature > 0
    n_max = max_new_tokens
    if context is not None:
        n_max = min(n_max, context - P - K + 1)
        if n_max < 1:
            raise ValueError(f"prompt {seq} is {P} tokens: with lookahead {K} "
                             f"it leaves no room within the context ({context})")
    rec = {"id": seq, "prompt_len": P, "entropy": [], "top1": [],
           "accept": [], "tokens": [], "cont": []}
    if P > 1:
        target.logits(prompt[:-1], 0)
        draft.logits(prompt[:-1], 0)
    tok, next_ld = prompt[-1], None
    for i in range(n_max):
        a = P + i                       # absolute position generated
        lt = target.logits([tok], a - 1)[-1]
        ld = next_ld if next_ld is not None else draft.logits([tok], a - 1)[-1]
        next_ld = None
        pt = dist(lt, temperature, top_p)
        pd = dist(ld, temperature, top_p)
        top = argmax(pd)
        if sampled:
            y = sample(pt, rng_uniform(seed, seq, i, RNG_TARGET))
            d = sample(pd, rng_uniform(seed, seq, i, RNG_DRAFT))
            acc = f32(overlap(pt, pd))
        else:
            y, d = argmax(pt), top
            acc = 1.0 if y == d else 0.0
        rec["entropy"].append(f32(entropy(pd)))
        rec["top1"].append(float(pd[top]))
        rec["accept"].append(acc)
        rec["tokens"].append(y)
        if acc < 1.0:
            # the draft's own continuation from its token d at position a;
            # when d is the target's token, its first step is the draft's
            # next main step (reused, as ahasd-capture does)
            row, c = [], d
            for j in range(K):
                lc = draft.logits([c], a + j)[-1]
                if j == 0 and d == y:
                    next_ld = lc
                pc = dist(lc, temperature, top_p)
                row.append(f32(entropy(pc)))
                if j + 1 < K:
                    c = (sample(pc, rng_uniform(seed, seq, i, RNG_CONT + j))
                         if sampled else argmax(pc))
            rec["cont"].append([i, row])
        tok = y
        if y in stop:
            break
    return rec


def capture(target, draft, prompts, out, models, lookahead=16,
            max_new_tokens=256, temperature=0.0, top_p=1.0, seed=0,
            stop=(1, 2), provenance=None, progress=None):
    """Capture every prompt (lists of token ids) and write JSON lines to out
    (a path). models = {"draft": MODEL, "target": MODEL} as in IMPORT.md
    (Llama2c.describe, hf_describe, or your own dict)."""
    sampled = temperature > 0
    ctx = [c for c in (getattr(target, "context", None),
                       getattr(draft, "context", None)) if c]
    context = min(ctx) if ctx else None
    prov = {"tool": TOOL, "runtime": f"PyTorch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)",
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sampling": "sampled" if sampled else "greedy",
            "entropy": "nats, draft distribution after temperature and top-p, "
            "given the true prefix" if sampled else
            "nats, draft softmax (T=1) given the true prefix",
            "prompt_len": "tokens including BOS",
            "max_new_tokens": str(max_new_tokens),
            "stop": "after the target emits one of " +
            ", ".join(map(str, stop)) if stop else "none (max_new_tokens)"}
    prov.update(provenance or {})
    header = {"version": 1, "lookahead": lookahead, "sampled": sampled,
              "temperature": temperature if sampled else 0.0,
              "top_p": top_p if sampled else 1.0, "seed": seed,
              "provenance": prov, "models": models}
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for s, prompt in enumerate(prompts):
            rec = capture_sequence(target, draft, prompt, s, lookahead,
                                   max_new_tokens, temperature, top_p, seed,
                                   stop, context)
            f.write(json.dumps(rec) + "\n")
            if progress:
                progress(s + 1, len(prompts), len(rec["accept"]))
    os.replace(tmp, out)


# ---------------------------------------------------------------------------
# command line


def read_prompts(path):
    """One prompt per line, or JSON lines {"prompt": "..."}; blank lines
    skipped (as ahasd-capture)."""
    prompts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            if line.startswith("{"):
                v = json.loads(line).get("prompt")
                if not isinstance(v, str):
                    raise ValueError(f"{path}:{n}: field 'prompt': expected a string")
                line = v
            prompts.append(line)
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _llama2c_pair(args):
    import torch_llama2c as l2c
    tpath = args.target[len("llama2c:"):]
    dpath = args.draft[len("llama2c:"):] if args.draft else tpath
    tck = l2c.Checkpoint(tpath)
    dck = tck if dpath == tpath else l2c.Checkpoint(dpath)
    if dck.vocab_size != tck.vocab_size:
        raise ValueError("a speculative pair must share one vocabulary")
    skip = ([int(x) for x in args.draft_skip_layers.split(",")]
            if args.draft_skip_layers else [])
    if not args.draft and not skip:
        raise ValueError("no draft: give --draft or --draft-skip-layers")
    tm, dm = l2c.Llama2c(tck), l2c.Llama2c(dck, skip)
    tokp = args.tokenizer
    if not tokp:
        d = os.path.dirname(tpath)
        tokp = next((os.path.join(d, n) for n in ("tok512.bin", "tokenizer.bin")
                     if os.path.exists(os.path.join(d, n))), None)
        if not tokp:
            raise ValueError(f"{tpath}: no tok512.bin or tokenizer.bin beside "
                             "the model; give --tokenizer")
    tok = l2c.Tokenizer(tokp, tck.vocab_size)
    stem = lambda p: os.path.splitext(os.path.basename(p))[0]
    suffix = "-skip" + args.draft_skip_layers.replace(",", "_") if skip else ""
    models = {"target": tm.describe(stem(tpath)[:63]),
              "draft": dm.describe((stem(dpath)[:30] + suffix)[:63])}
    prov = {"target_model": os.path.basename(tpath),
            "target_model_sha256": sha256_file(tpath),
            "draft_model": os.path.basename(dpath),
            "draft_model_sha256": sha256_file(dpath),
            "tokenizer": os.path.basename(tokp),
            "tokenizer_sha256": sha256_file(tokp),
            "draft_skip_layers": args.draft_skip_layers or "none",
            "draft_skip_layers_base": "1-based layer numbers"}
    return (CachedLM(tm, tck.seq_len), CachedLM(dm, dck.seq_len), tok.encode,
            models, prov, (1, 2))


def _hf_pair(args):
    try:
        import transformers
    except ImportError:
        raise SystemExit("torch_capture.py: hf: models need the transformers "
                         "package (pip install transformers)")
    if not args.draft:
        raise ValueError("hf: models need --draft hf:MODEL")
    tname, dname = args.target[3:], args.draft[3:]
    tok = transformers.AutoTokenizer.from_pretrained(args.tokenizer or tname)
    tm = transformers.AutoModelForCausalLM.from_pretrained(tname)
    dm = transformers.AutoModelForCausalLM.from_pretrained(dname)
    if tm.config.vocab_size != dm.config.vocab_size:
        raise ValueError("a speculative pair must share one vocabulary")
    models = {"target": hf_describe(tm, os.path.basename(tname.rstrip("/"))),
              "draft": hf_describe(dm, os.path.basename(dname.rstrip("/")))}
    prov = {"target_model": tname, "draft_model": dname,
            "tokenizer": args.tokenizer or tname,
            "transformers": transformers.__version__}
    eos = tok.eos_token_id
    stop = tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)
    return (HFLM(tm), HFLM(dm), lambda text: tok(text).input_ids, models,
            prov, tuple(s for s in stop if s is not None))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Capture a speculative-decoding trace (JSON lines, "
        "capture/IMPORT.md) from PyTorch models.")
    ap.add_argument("--target", required=True,
                    help="llama2c:CHECKPOINT.bin or hf:MODEL (name or folder)")
    ap.add_argument("--draft", help="the draft, same forms (llama2c: "
                    "default: the target, with --draft-skip-layers)")
    ap.add_argument("--draft-skip-layers", metavar="LIST",
                    help="llama2c: skip these 1-based layers in the draft")
    ap.add_argument("--tokenizer", help="default: tok512.bin or tokenizer.bin "
                    "beside a llama2c target; the target's for hf:")
    ap.add_argument("-p", "--prompts", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lookahead", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--max-prompts", type=int, default=0)
    ap.add_argument("--no-stop", action="store_true")
    ap.add_argument("--date", help="date recorded (default: now, UTC)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.lookahead < 1 or args.max_new_tokens < 1:
        ap.error("--lookahead and --max-new-tokens must be >= 1")
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        ap.error("--temperature must be >= 0 and --top-p in (0, 1]")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        if args.target.startswith("llama2c:"):
            if args.draft and not args.draft.startswith("llama2c:"):
                ap.error("--draft must be llama2c: with a llama2c: target")
            target, draft, encode, models, prov, stop = _llama2c_pair(args)
        elif args.target.startswith("hf:"):
            if args.draft_skip_layers:
                ap.error("--draft-skip-layers is for llama2c: models")
            target, draft, encode, models, prov, stop = _hf_pair(args)
        else:
            ap.error("--target: expected llama2c:PATH or hf:MODEL")
        texts = read_prompts(args.prompts)
        if args.max_prompts:
            texts = texts[:args.max_prompts]
        prompts = [encode(t) for t in texts]
    except (OSError, ValueError) as e:
        print(f"torch_capture.py: {e}", file=sys.stderr)
        return 1
    prov.update({"prompt_source": args.prompts,
                 "prompt_source_sha256": sha256_file(args.prompts),
                 "prompts": str(len(prompts)), "seed": str(args.seed),
                 "temperature": f"{args.temperature:g}",
                 "top_p": f"{args.top_p:g}"})
    if args.date:
        prov["date"] = args.date

    def progress(done, total, n):
        if not args.quiet:
            print(f"\rtorch_capture: {done}/{total} prompts", end="",
                  file=sys.stderr, flush=True)

    capture(target, draft, prompts, args.output, models,
            lookahead=args.lookahead, max_new_tokens=args.max_new_tokens,
            temperature=args.temperature, top_p=args.top_p, seed=args.seed,
            stop=() if args.no_stop else stop, provenance=prov,
            progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
