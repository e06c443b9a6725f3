#!/usr/bin/env python3
"""specbench_to_jsonl.py - SpecDecode-Bench acceptance logs -> the
acceptance-length JSON lines of capture/IMPORT-RUNS.md.

SpecDecode-Bench (Liu et al., "Speculative Decoding: Performance or
Illusion?", arXiv:2601.11580; github.com/SpecDecode-Bench/simulator,
data/llama3.1-8B/combined_*.jsonl) publishes, per request of a dataset run
through vLLM with Llama-3.1-8B-Instruct on H100:

  id                    request id (a string)
  prompt_token_ids      the prompt
  generated_token_ids   the generated tokens (of one of the runs)
  acc_eagle.acc_len     per decode step of the EAGLE run: the tokens that
  acc_ngram.acc_len     step produced, the bonus or correction included,
                        when it started with acc_len[i] ... i.e. entry i is
                        for the speculation drafted after i + 1 tokens were
                        generated (their simulator reads
                        acc_len[cur_gen_len - 1]); the first token comes
                        from the prefill.

So one request becomes one sequence with
  prompt_len    = len(prompt_token_ids) + 1   (the prefill's token)
  n             = len(acc_len) - 1            (the last entry has no
                                               position after it)
  accept_run[q] = acc_len[q] - 1              (drafts accepted; the bonus
                                               is the replay's own)
The largest acc_len in the published files is 21: the profiling drafted
20 tokens per step, so accept_run_max = 20. vLLM's EAGLE and n-gram
proposers draft one chain per step, so tree_tokens = 20 (give --tree-tokens
for a tree runtime). The EAGLE run's generated length can differ from the
n-gram run's (its own acc_len array is used).

usage: specbench_to_jsonl.py IN.jsonl --method eagle|ngram
                             [--ids ID,ID] [--max-positions N]
                             [--tree-tokens T] > OUT.jsonl
Only the standard library; output is deterministic (sorted keys).
"""
import argparse
import json
import sys

R = 20  # the profiling's draft length: max(acc_len) - 1 over the files

# Llama-3.1-8B-Instruct (its config.json), bf16 weights
TARGET = {
    "name": "llama-3.1-8b-instruct", "dim": 4096, "hidden_dim": 14336,
    "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
    "seq_len": 131072, "weight_bits": 16, "ops": "llama",
}
# EAGLE's draft for it: one decoder layer of the target's shape that reads
# the target's embedding and LM head (costed as a one-layer llama; the
# 2d x d fusion matrix before the layer is left out)
EAGLE = dict(TARGET, name="eagle-llama3.1-instruct-8b", n_layers=1)


def header(method, tree_tokens, source):
    h = {
        "version": "1.1",
        "accept_run_max": R,
        "tree_tokens": tree_tokens,
        "entropy": False,
        "sampled": False,
        "provenance": {
            "runtime": "vLLM (SpecDecode-Bench profiling, H100)",
            "source": "github.com/SpecDecode-Bench/simulator "
                      "data/llama3.1-8B/" + source + " (commit 2fdccbd)",
            "source_field": "acc_" + method + ".acc_len",
            "converter": "capture/acclogs/specbench_to_jsonl.py",
            "proposer": "EAGLE (vLLM)" if method == "eagle"
                        else "n-gram (vLLM)",
            "sampling_note": "the data does not state the decoding mode; "
                             "runs are outcomes, so the replay does not "
                             "depend on it",
        },
    }
    if method == "ngram":
        h["draft_lookup"] = "ngram"
        h["models"] = {"target": TARGET}
    else:
        h["models"] = {"draft": EAGLE, "target": TARGET}
    return h


def convert(d, method, max_positions):
    acc = d["acc_" + method]["acc_len"]
    n = len(acc) - 1
    if max_positions is not None:
        n = min(n, max_positions)
    runs = [a - 1 for a in acc[:n]]
    if n < 1 or min(runs) < 0 or max(runs) > R:
        raise ValueError("request %s: acc_len outside [1, %d]" % (d["id"],
                                                                  R + 1))
    return {"id": int(d["id"]), "prompt_len": len(d["prompt_token_ids"]) + 1,
            "n": n, "accept_run": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("--method", choices=("eagle", "ngram"), required=True)
    ap.add_argument("--ids", help="comma-separated request ids to keep")
    ap.add_argument("--max-positions", type=int,
                    help="keep the first N positions of each request")
    ap.add_argument("--tree-tokens", type=int, default=R,
                    help="T of the verified tree (default %d: a chain)" % R)
    a = ap.parse_args()
    keep = set(a.ids.split(",")) if a.ids else None
    name = a.input.rsplit("/", 1)[-1]
    out = [json.dumps(header(a.method, a.tree_tokens, name), sort_keys=True)]
    with open(a.input) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            if keep is None or d["id"] in keep:
                out.append(json.dumps(convert(d, a.method, a.max_positions),
                                      sort_keys=True))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
