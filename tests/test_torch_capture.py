#!/usr/bin/python3
"""test_torch_capture.py - the PyTorch capture (capture/torch_capture.py)
against the C capture (ahasd-capture) on the same real checkpoints.

usage: test_torch_capture.py AHASD-CAPTURE-BINARY

Run with Debian's /usr/bin/python3 and python3-torch (./run tests installs
it). Exits 77 (SKIP, with the reason on stderr) when torch is not importable
there or the models in AHASD_MODELS_DIR (../shared/models) are absent.

What is checked, on stories260K (layer 3 skipped) and aidreams260K (layer
2 skipped), greedy, the prompts of capture/prompts/:
- the two captures have the same sequences, prompt lengths, generated
  lengths, target tokens, acceptance a_p and continuation positions,
  exactly;
- entropies, top-1 probabilities and continuation entropies agree within
  TOL (float32 forwards summing in different orders). Run once over all 64
  prompts (AHASD_TORCH_PROMPTS=64, stories260K then at 96 new tokens):
  stories260K, 6144 positions, every token and a_p equal, largest
  difference 3.9e-5; aidreams260K, 5733 positions (the shipped greedy
  trace's), equal, largest 1.2e-5;
- the JSON lines import (ahasd-capture import) and validate;
- a sampled capture (T 0.8, no top-p): the same counter-based draws as
  the C capture, so the same tokens, and a_p within TOL, up to the first
  token where the two float32 forwards put a draw on different sides of a
  CDF step (none in the prompts used here). Top-p adds a second such step
  (a token whose cumulative mass is within float noise of top_p is kept by
  one side only, and that step's entropy differs), so top-p is checked on
  a worked example instead;
- the three model adapters (CachedLM, StatelessLM, HFLM over a model with
  Hugging Face's past_key_values conventions) give the same records.
AHASD_TORCH_PROMPTS=N widens the greedy comparison to N prompts per model.
"""

import os
import struct
import subprocess
import sys
import tempfile
import time
import types

SKIP = 77
TOL = 1e-4  # nats for entropies; absolute for top-1 probabilities

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "capture"))


def skip(msg):
    print(f"SKIP test_torch_capture: {msg}", file=sys.stderr)
    sys.exit(SKIP)


try:
    import torch
except ImportError as e:
    skip(f"PyTorch is not importable by {sys.executable} ({e}); on Debian: "
         "apt-get install python3-torch (./run tests installs it)")

import torch_capture as tc  # noqa: E402
import torch_llama2c as l2c  # noqa: E402

# ---------------------------------------------------------------------------
# a msgpack reader for what trace files hold (traces/FORMAT.md)


def unpack(buf):
    """All top-level objects of a msgpack byte string."""
    out, off = [], 0
    while off < len(buf):
        v, off = _obj(buf, off)
        out.append(v)
    return out


def _obj(b, o):
    t = b[o]
    o += 1
    if t <= 0x7F:
        return t, o
    if 0x80 <= t <= 0x8F:
        return _map(b, o, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _arr(b, o, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[o:o + n].decode(), o + n
    if t >= 0xE0:
        return t - 0x100, o
    fixed = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in fixed:
        return fixed[t], o
    sized = {0xCC: "B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: "b",
             0xD1: ">h", 0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if t in sized:
        f = sized[t]
        n = struct.calcsize(f)
        return struct.unpack_from(f, b, o)[0], o + n
    lens = {0xC4: "B", 0xC5: ">H", 0xC6: ">I", 0xD9: "B", 0xDA: ">H",
            0xDB: ">I", 0xDC: ">H", 0xDD: ">I", 0xDE: ">H", 0xDF: ">I"}
    if t in lens:
        f = lens[t]
        n = struct.unpack_from(f, b, o)[0]
        o += struct.calcsize(f)
        if t in (0xC4, 0xC5, 0xC6):
            return bytes(b[o:o + n]), o + n
        if t in (0xD9, 0xDA, 0xDB):
            return b[o:o + n].decode(), o + n
        if t in (0xDC, 0xDD):
            return _arr(b, o, n)
        return _map(b, o, n)
    raise ValueError(f"msgpack type 0x{t:02x} at {o - 1}")


def _map(b, o, n):
    d = {}
    for _ in range(n):
        k, o = _obj(b, o)
        d[k], o = _obj(b, o)
    return d, o


def _arr(b, o, n):
    a = []
    for _ in range(n):
        v, o = _obj(b, o)
        a.append(v)
    return a, o


def read_trace(path):
    """header, [sequence dicts with lists of floats / ints]"""
    with open(path, "rb") as f:
        objs = unpack(f.read())
    assert objs[0]["type"] == "header" and objs[-1]["type"] == "end", path
    K = objs[0]["lookahead"]
    seqs = []
    for r in objs[1:-1]:
        n = r["n"]
        f32 = lambda k, m: list(struct.unpack(f"<{m}f", r[k]))
        u32 = lambda k, m: list(struct.unpack(f"<{m}I", r[k]))
        nc = len(r["cont_pos"]) // 4
        ce = f32("cont_entropy", nc * K)
        seqs.append({"id": r["id"], "prompt_len": r["prompt_len"], "n": n,
                     "entropy": f32("entropy", n), "top1": f32("top1", n),
                     "accept": f32("accept", n),
                     "tokens": u32("tokens", n) if r.get("tokens") else None,
                     "cont_pos": u32("cont_pos", nc),
                     "cont": [ce[i * K:(i + 1) * K] for i in range(nc)]})
    return objs[0], seqs


def from_jsonl(rec):
    """A torch_capture record in read_trace's form."""
    return {"id": rec["id"], "prompt_len": rec["prompt_len"],
            "n": len(rec["accept"]), "entropy": rec["entropy"],
            "top1": rec["top1"], "accept": rec["accept"],
            "tokens": rec["tokens"], "cont_pos": [p for p, _ in rec["cont"]],
            "cont": [row for _, row in rec["cont"]]}


# ---------------------------------------------------------------------------
# checks

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print(f"FAIL: {msg}", file=sys.stderr)
    return cond


def compare(what, c_seqs, t_seqs, upto_divergence=False):
    """Exact on discrete fields, TOL on floats. With upto_divergence (a
    sampled capture), compare each sequence up to its first differing
    token. @return (max float difference, positions compared)."""
    worst, npos = 0.0, 0
    check(len(c_seqs) == len(t_seqs),
          f"{what}: {len(c_seqs)} sequences in C, {len(t_seqs)} in torch")
    for c, t in zip(c_seqs, t_seqs):
        s = f"{what} sequence {c['id']}"
        check(c["id"] == t["id"] and c["prompt_len"] == t["prompt_len"],
              f"{s}: id/prompt_len {c['id']}/{c['prompt_len']} vs "
              f"{t['id']}/{t['prompt_len']}")
        n = min(c["n"], t["n"])
        if upto_divergence:
            n = next((i + 1 for i in range(n)
                      if c["tokens"][i] != t["tokens"][i]), n)
        else:
            check(c["n"] == t["n"], f"{s}: {c['n']} vs {t['n']} tokens")
            diff = next((i for i in range(n)
                         if c["tokens"][i] != t["tokens"][i]), None)
            check(diff is None, f"{s}: first different token at position "
                  f"{diff}")
            acc = next((i for i in range(n)
                        if c["accept"][i] != t["accept"][i]), None)
            check(acc is None, f"{s}: a_p differs first at position {acc}")
        npos += n
        cp = [p for p in c["cont_pos"] if p < n]
        tp = [p for p in t["cont_pos"] if p < n]
        check(cp == tp, f"{s}: continuation positions differ")
        for k in ("entropy", "top1", "accept"):
            d = max((abs(a - b) for a, b in zip(c[k][:n], t[k][:n])),
                    default=0.0)
            worst = max(worst, d)
            check(d <= TOL, f"{s}: {k} differs by {d:.3g} > {TOL}")
        for rc, rt in zip(c["cont"][:len(cp)], t["cont"][:len(tp)]):
            d = max(abs(a - b) for a, b in zip(rc, rt))
            worst = max(worst, d)
            check(d <= TOL, f"{s}: continuation entropies differ by "
                  f"{d:.3g} > {TOL}")
    return worst, npos


def rng_c(seed, a, b, stream):
    """llm_rng_uniform() of capture/llm.c, written out once more."""
    m = (1 << 64) - 1

    def sm(x):
        x = (x + 0x9E3779B97F4A7C15) & m
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
        return x ^ (x >> 31)
    h = sm(sm(sm(sm(seed) ^ a) ^ ((b * 0x100000001B3) & m)) ^ (stream + 0x51ED27))
    return (h >> 11) / 2.0 ** 53


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {r.returncode}")
    return r.stdout


def pair(model, skip_layers):
    ck = l2c.Checkpoint(model)
    tok = l2c.Tokenizer(os.path.join(os.path.dirname(model), "tok512.bin"),
                        ck.vocab_size)
    target = l2c.Llama2c(ck)
    draft = l2c.Llama2c(ck, [int(x) for x in skip_layers.split(",")])
    return ck, tok, target, draft


def prompts_of(path, n, tok):
    return [tok.encode(t) for t in tc.read_prompts(path)[:n]]


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    cap = sys.argv[1]
    models = os.environ.get("AHASD_MODELS_DIR",
                            os.path.join(SRC, "..", "shared", "models"))
    stories = os.path.join(models, "stories260K", "stories260K.bin")
    dreams = os.path.join(models, "aidreams260K", "aidreams260K.bin")
    for m in (stories, dreams):
        if not os.path.exists(m):
            skip(f"{m} not found (the real models live in ../shared/models "
                 "beside the source tree, or AHASD_MODELS_DIR)")
    torch.set_num_threads(1)
    nprompts = int(os.environ.get("AHASD_TORCH_PROMPTS", "3"))
    with tempfile.TemporaryDirectory(prefix="ahasd-torch-") as tmp:
        return checks(cap, stories, dreams, nprompts, tmp)


def checks(cap, stories, dreams, nprompts, tmp):
    t_start = time.time()

    # ---- greedy, both models: C vs torch ----
    cases = [
        ("stories260K skip 3", stories, "3", "stories.txt", 64),
        ("aidreams260K skip 2", dreams, "2", "dreams.txt", 256),
    ]
    for what, model, skip_layers, pfile, max_new in cases:
        t0 = time.time()
        pf = os.path.join(SRC, "capture", "prompts", pfile)
        c_out = os.path.join(tmp, "c.msgpack")
        run([cap, "-q", "-m", model, "--draft-skip-layers", skip_layers,
             "-p", pf, "-o", c_out, "--max-prompts", str(nprompts),
             "--max-new-tokens", str(max_new)])
        ck, tok, target, draft = pair(model, skip_layers)
        jl = os.path.join(tmp, "t.jsonl")
        tc.capture(tc.CachedLM(target, ck.seq_len),
                   tc.CachedLM(draft, ck.seq_len),
                   prompts_of(pf, nprompts, tok), jl,
                   {"target": target.describe("target"),
                    "draft": draft.describe("draft")},
                   max_new_tokens=max_new)
        # the JSON lines import, and the import is what is compared
        t_out = os.path.join(tmp, "t.msgpack")
        run([cap, "import", jl, "-o", t_out])
        _, c_seqs = read_trace(c_out)
        _, t_seqs = read_trace(t_out)
        worst, npos = compare(what, c_seqs, t_seqs)
        acc = sum(sum(s["accept"]) for s in t_seqs) / max(npos, 1)
        print(f"{what}: {len(t_seqs)} sequences, {npos} positions, mean a_p "
              f"{acc:.4f}, largest float difference {worst:.3g} "
              f"({time.time() - t0:.1f} s)")

    # ---- sampled: the same draws, compared up to a divergence ----
    t0 = time.time()
    pf = os.path.join(SRC, "capture", "prompts", "stories.txt")
    c_out = os.path.join(tmp, "cs.msgpack")
    run([cap, "-q", "-m", stories, "--draft-skip-layers", "3", "-p", pf,
         "-o", c_out, "--max-prompts", "2", "--max-new-tokens", "48",
         "--temperature", "0.8", "--seed", "1"])
    ck, tok, target, draft = pair(stories, "3")
    jl = os.path.join(tmp, "ts.jsonl")
    tc.capture(tc.CachedLM(target, ck.seq_len), tc.CachedLM(draft, ck.seq_len),
               prompts_of(pf, 2, tok), jl,
               {"target": target.describe("t"), "draft": draft.describe("d")},
               max_new_tokens=48, temperature=0.8, seed=1)
    t_out = os.path.join(tmp, "ts.msgpack")
    run([cap, "import", jl, "-o", t_out])
    hdr, c_seqs = read_trace(c_out)
    _, t_seqs = read_trace(t_out)
    check(hdr["sampling"] == "sampled", "the C capture is not sampled")
    worst, npos = compare("sampled", c_seqs, t_seqs, upto_divergence=True)
    same = sum(c["tokens"] == t["tokens"] for c, t in zip(c_seqs, t_seqs))
    check(same == len(c_seqs), f"sampled: {len(c_seqs) - same} sequences "
          "diverge (a draw at a CDF step; see the docstring)")
    frac = [a for s in t_seqs for a in s["accept"] if 0 < a < 1]
    check(frac, "sampled: no fractional a_p")
    print(f"sampled T 0.8: {npos} positions agree, largest float "
          f"difference {worst:.3g} ({time.time() - t0:.1f} s)")

    # ---- top-p on a worked example: softmax [0.5, 0.3, 0.15, 0.05] ----
    lg = torch.log(torch.tensor([0.15, 0.5, 0.05, 0.3]))
    p = tc.dist(lg, 1.0, 0.75)      # keeps 0.5 and 0.3: 0.5 + 0.3 >= 0.75
    check(torch.allclose(p, torch.tensor([0.0, 0.625, 0.0, 0.375])),
          f"top-p 0.75 of [0.15, 0.5, 0.05, 0.3]: got {p.tolist()}")
    p = tc.dist(torch.zeros(4), 1.0, 0.5)   # ties: the lower ids first
    check(p.tolist() == [0.5, 0.5, 0.0, 0.0], f"top-p ties: got {p.tolist()}")
    check(tc.dist(lg, 0.0, 0.5).gt(0).all().item(),
          "greedy: top-p must not apply")
    check(tc.sample(torch.tensor([0.0, 0.25, 0.0, 0.75]), 0.25) == 3 and
          tc.sample(torch.tensor([0.0, 0.25, 0.0, 0.75]), 0.2499) == 1,
          "inverse-CDF sampling")
    check(abs(tc.rng_uniform(1, 2, 3, 4) - rng_c(1, 2, 3, 4)) == 0,
          "rng_uniform differs from llm_rng_uniform")

    # ---- the adapters give the same records ----
    t0 = time.time()
    ck, tok, target, draft = pair(stories, "3")
    prompts = prompts_of(pf, 1, tok)
    kw = dict(lookahead=4, max_new_tokens=24, context=ck.seq_len)

    def recs(t, d):
        return [tc.capture_sequence(t, d, p, i, **kw)
                for i, p in enumerate(prompts)]

    ref = recs(tc.CachedLM(target), tc.CachedLM(draft))

    class Stateless(torch.nn.Module):  # input_ids -> logits, nothing kept
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids):
            return self.m.forward_past(ids)[0]

    class Cache:  # the crop() of transformers' DynamicCache
        def __init__(self, past):
            self.past = past

        def crop(self, n):
            self.past = tuple((k[..., :n, :], v[..., :n, :])
                              for k, v in self.past)

    class HFLike(torch.nn.Module):
        """Hugging Face's calling convention: input_ids, past_key_values
        (None, a legacy tuple or a Cache), position_ids, use_cache; returns
        .logits and .past_key_values."""

        def __init__(self, m, legacy):
            super().__init__()
            self.m, self.legacy = m, legacy
            self.config = types.SimpleNamespace(max_position_embeddings=ck.seq_len)

        def forward(self, input_ids, past_key_values=None, position_ids=None,
                    use_cache=True):
            past = past_key_values
            if isinstance(past, Cache):
                past = past.past
            n = 0 if past is None else past[0][0].shape[2]
            assert position_ids[0, 0] == n, "position_ids must follow the cache"
            logits, new = self.m.forward_past(input_ids, past)
            return types.SimpleNamespace(
                logits=logits, past_key_values=new if self.legacy else Cache(new))

    for name, t, d in (
            ("StatelessLM", tc.StatelessLM(Stateless(target)),
             tc.StatelessLM(Stateless(draft))),
            ("HFLM legacy cache", tc.HFLM(HFLike(target, True)),
             tc.HFLM(HFLike(draft, True))),
            ("HFLM Cache.crop", tc.HFLM(HFLike(target, False)),
             tc.HFLM(HFLike(draft, False)))):
        got = recs(t, d)
        compare(name, [from_jsonl(r) for r in ref], [from_jsonl(r) for r in got])
    print(f"adapters: StatelessLM, HFLM (legacy and Cache) equal CachedLM "
          f"({time.time() - t0:.1f} s)")

    print(f"total {time.time() - t_start:.1f} s")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("test_torch_capture: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
