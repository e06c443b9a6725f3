"""torch_llama2c.py - llama2.c checkpoints in PyTorch: the reference forward
pass of Karpathy's run.c (rmsnorm, RoPE, grouped-query attention with a KV
cache, SwiGLU), its BPE tokenizer, and layer-skipped self-speculative drafts.

It reads the same files as ahasd-capture (capture/llm.c): the legacy
version-0 checkpoint (seven int32 dim, hidden_dim, n_layers, n_heads,
n_kv_heads, vocab_size, seq_len; a negative vocab_size means an unshared
classifier; then fp32 weights) and tok512.bin / tokenizer.bin. It exists
so that torch_capture.py can be checked against the C capture on the same
model (tests/test_torch_capture.py), and it doubles as a way to capture
llama2.c checkpoints from PyTorch:

    python3 capture/torch_capture.py --target llama2c:stories260K.bin \\
        --draft-skip-layers 3 -p prompts.txt -o run.jsonl

Needs torch only (numpy is not used).
"""

import math
import struct

import torch

BOS, EOS = 1, 2


class Checkpoint:
    """The config and fp32 weights of a legacy llama2.c checkpoint."""

    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) >= 4 and data[:4] == b"ak42":
            raise ValueError(f"{path}: llama2.c checkpoint version with magic "
                             "'ak42' is not supported; re-export with "
                             "export.py --version 0")
        if len(data) < 28:
            raise ValueError(f"{path}: truncated checkpoint ({len(data)} bytes)")
        (self.dim, self.hidden_dim, self.n_layers, self.n_heads,
         self.n_kv_heads, vocab, self.seq_len) = struct.unpack("<7i", data[:28])
        self.shared_classifier = vocab > 0
        self.vocab_size = abs(vocab)
        if (min(self.dim, self.hidden_dim, self.n_layers, self.n_heads,
                self.n_kv_heads, self.vocab_size, self.seq_len) <= 0
                or self.dim % self.n_heads or self.n_heads % self.n_kv_heads):
            raise ValueError(f"{path}: not a llama2.c version-0 checkpoint")
        dim, hid, L = self.dim, self.hidden_dim, self.n_layers
        hs = dim // self.n_heads
        kvd = dim * self.n_kv_heads // self.n_heads
        shapes = [
            ("tok_emb", (self.vocab_size, dim)),
            ("rms_att", (L, dim)),
            ("wq", (L, dim, dim)),
            ("wk", (L, kvd, dim)),
            ("wv", (L, kvd, dim)),
            ("wo", (L, dim, dim)),
            ("rms_ffn", (L, dim)),
            ("w1", (L, hid, dim)),
            ("w2", (L, dim, hid)),
            ("w3", (L, hid, dim)),
            ("rms_final", (dim,)),
            ("freq_cis", (self.seq_len, hs)),  # unused, as in run.c
        ]
        if not self.shared_classifier:
            shapes.append(("wcls", (self.vocab_size, dim)))
        need = 28 + 4 * sum(math.prod(s) for _, s in shapes)
        if len(data) != need:
            raise ValueError(f"{path}: {len(data)} bytes, but the header "
                             f"implies {need}")
        flat = torch.frombuffer(bytearray(data[28:]), dtype=torch.float32)
        self.w = {}
        off = 0
        for name, shape in shapes:
            n = math.prod(shape)
            self.w[name] = flat[off:off + n].view(shape)
            off += n
        if self.shared_classifier:
            self.w["wcls"] = self.w["tok_emb"]


def _rmsnorm(x, w):
    # run.c: ss = sum(x^2) / n + 1e-5; w * (x / sqrt(ss))
    ss = (x * x).sum(-1, keepdim=True) / x.shape[-1] + 1e-5
    return w * (x * (1.0 / torch.sqrt(ss)))


class Llama2c(torch.nn.Module):
    """The run.c forward pass, batched over the tokens of one call.

    forward(tokens, start_pos) follows the reference llama convention: tokens
    is a LongTensor [1, T] fed at positions start_pos .. start_pos+T-1; the
    model keeps its KV cache, whose rows from start_pos on are overwritten,
    and returns logits [1, T, vocab]. skip_layers (1-based layer numbers)
    makes the self-speculative draft of ahasd-capture --draft-skip-layers.
    """

    def __init__(self, ckpt, skip_layers=()):
        super().__init__()
        self.cfg = ckpt
        for l in skip_layers:
            if not 1 <= l <= ckpt.n_layers:
                raise ValueError(f"skip layer {l}: expected 1..{ckpt.n_layers}")
        self.active = [l for l in range(ckpt.n_layers)
                       if l + 1 not in set(skip_layers)]
        if not self.active:
            raise ValueError("every layer skipped")
        self.w = ckpt.w
        self.head_size = ckpt.dim // ckpt.n_heads
        self.kv_dim = ckpt.dim * ckpt.n_kv_heads // ckpt.n_heads
        # RoPE angles as run.c computes them: float32 throughout
        hd = torch.arange(0, self.head_size, 2, dtype=torch.float32)
        freq = 1.0 / torch.pow(torch.tensor(10000.0), hd / self.head_size)
        ang = torch.arange(ckpt.seq_len, dtype=torch.float32)[:, None] * freq
        self.cos, self.sin = torch.cos(ang), torch.sin(ang)
        self.k_cache = torch.zeros(ckpt.n_layers, ckpt.seq_len, self.kv_dim)
        self.v_cache = torch.zeros(ckpt.n_layers, ckpt.seq_len, self.kv_dim)

    def _rope(self, x, pos):
        # rotate pairs (2i, 2i+1) of each head by the angle of position pos
        T, n = x.shape
        x = x.view(T, n // self.head_size, self.head_size // 2, 2)
        c = self.cos[pos][:, None, :]
        s = self.sin[pos][:, None, :]
        x0, x1 = x[..., 0], x[..., 1]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).view(T, n)

    @torch.no_grad()
    def forward(self, tokens, start_pos=0):
        c = self.cfg
        tokens = tokens.view(-1)
        end = start_pos + tokens.shape[0]
        if end > c.seq_len:
            raise ValueError(f"positions up to {end - 1} past the context "
                             f"({c.seq_len})")

        def kv(l, k, v):  # the cache rows from start_pos are overwritten
            self.k_cache[l, start_pos:end] = k
            self.v_cache[l, start_pos:end] = v
            return self.k_cache[l, :end], self.v_cache[l, :end]

        return self._run(tokens, start_pos, kv)[None]

    @torch.no_grad()
    def forward_past(self, tokens, past=None):
        """The same forward with the KV cache passed in and out, in the
        layout of Hugging Face's legacy past_key_values: per model layer
        (keys, values), each [1, n_kv_heads, L, head_size]. @return
        (logits [1, T, vocab], the new past)."""
        c = self.cfg
        tokens = tokens.view(-1)
        start = 0 if past is None else past[self.active[0]][0].shape[2]
        out = [None] * c.n_layers
        nkv, hs = c.n_kv_heads, self.head_size

        def kv(l, k, v):
            k = k.view(-1, nkv, hs).transpose(0, 1)[None]
            v = v.view(-1, nkv, hs).transpose(0, 1)[None]
            if past is not None:
                k = torch.cat((past[l][0], k), 2)
                v = torch.cat((past[l][1], v), 2)
            out[l] = (k, v)
            flat = lambda t: t[0].transpose(0, 1).reshape(-1, nkv * hs)
            return flat(k), flat(v)

        logits = self._run(tokens, start, kv)[None]
        empty = torch.zeros(1, nkv, start + tokens.shape[0], hs)
        return logits, tuple(o if o is not None else (empty, empty)
                             for o in out)

    def _run(self, tokens, start_pos, kv):
        # kv(l, k, v) stores layer l's new key and value rows and returns
        # all of them, positions 0 .. start_pos + T - 1
        c, w = self.cfg, self.w
        T = tokens.shape[0]
        pos = torch.arange(start_pos, start_pos + T)
        end = start_pos + T
        kv_mul = c.n_heads // c.n_kv_heads
        x = w["tok_emb"][tokens]
        for l in self.active:
            xb = _rmsnorm(x, w["rms_att"][l])
            q = self._rope(xb @ w["wq"][l].T, pos)
            keys, vals = kv(l, self._rope(xb @ w["wk"][l].T, pos),
                            xb @ w["wv"][l].T)
            keys = keys.view(end, c.n_kv_heads, self.head_size)
            vals = vals.view(end, c.n_kv_heads, self.head_size)
            keys = keys.repeat_interleave(kv_mul, dim=1)
            vals = vals.repeat_interleave(kv_mul, dim=1)
            qh = q.view(T, c.n_heads, self.head_size)
            att = torch.einsum("thd,lhd->htl", qh, keys) / math.sqrt(self.head_size)
            if T > 1:  # causal: the query at start_pos+t sees keys <= it
                mask = torch.arange(end)[None, :] > pos[:, None]
                att = att.masked_fill(mask, float("-inf"))
            att = torch.softmax(att, -1)
            out = torch.einsum("htl,lhd->thd", att, vals).reshape(T, c.dim)
            x = x + out @ w["wo"][l].T
            xb = _rmsnorm(x, w["rms_ffn"][l])
            h1 = xb @ w["w1"][l].T
            h = h1 * torch.sigmoid(h1) * (xb @ w["w3"][l].T)
            x = x + h @ w["w2"][l].T
        x = _rmsnorm(x, w["rms_final"])
        return x @ w["wcls"].T

    def describe(self, name):
        """The JSON-lines MODEL object (capture/IMPORT.md): the standard
        llama op list of the executed layers, fp32 weights."""
        c = self.cfg
        return {"name": name, "dim": c.dim, "hidden_dim": c.hidden_dim,
                "n_layers": len(self.active), "n_heads": c.n_heads,
                "n_kv_heads": c.n_kv_heads, "vocab_size": c.vocab_size,
                "seq_len": c.seq_len, "weight_bits": 32, "ops": "llama"}


class Tokenizer:
    """llama2.c tokenizer.bin: encode as run.c does (BOS, a dummy-prefix
    space, UTF-8 code points with byte fallback, then the best-scored merge
    until none applies); decode a piece after the previous token."""

    def __init__(self, path, vocab_size):
        with open(path, "rb") as f:
            data = f.read()
        (self.max_token_length,) = struct.unpack_from("<i", data, 0)
        off = 4
        self.vocab, self.scores = [], []
        for i in range(vocab_size):
            if off + 8 > len(data):
                raise ValueError(f"{path}: truncated at token {i}")
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            self.vocab.append(data[off:off + n])
            self.scores.append(score)
            off += n
        self.index = {}
        for i, piece in enumerate(self.vocab):
            self.index.setdefault(piece, i)  # the first id of a duplicate

    def _byte(self, b):
        return b + 3 if b + 3 < len(self.vocab) else 0

    def encode(self, text):
        raw = text.encode("utf-8")
        ids = [BOS]
        if raw:
            ids.append(self.index.get(b" ", self._byte(ord(" "))))
        i = 0
        while i < len(raw):
            j = i + 1  # one UTF-8 code point (at most 4 bytes)
            while j < len(raw) and raw[j] & 0xC0 == 0x80 and j - i < 4:
                j += 1
            cp = raw[i:j]
            if cp in self.index:
                ids.append(self.index[cp])
            else:
                ids.extend(self._byte(b) for b in cp)
            i = j
        while True:
            best, best_i, best_id = -1e10, -1, -1
            for k in range(len(ids) - 1):
                m = self.index.get(self.vocab[ids[k]] + self.vocab[ids[k + 1]])
                if m is not None and self.scores[m] > best:
                    best, best_i, best_id = self.scores[m], k, m
            if best_id < 0:
                return ids
            ids[best_i:best_i + 2] = [best_id]

    def decode(self, prev, token):
        piece = self.vocab[token]
        if prev == BOS and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        return piece.decode("utf-8", "replace")
