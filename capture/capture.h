/* capture.h - run a real draft/target pair over a prompt set and write a
 * version-1 trace; import JSON-lines traces from other runtimes.
 *
 * All functions return 0 or a negative errno-style code with a message in
 * err.
 */
#ifndef AHASD_CAPTURE_H
#define AHASD_CAPTURE_H

#include <stdint.h>
#include <stdio.h>

#include "llm.h"

#define CAPTURE_RUNTIME           "ahasd-capture (C, fp32, 1 thread)"
#define CAPTURE_DEFAULT_LOOKAHEAD 16
#define CAPTURE_DEFAULT_MAX_NEW   256

struct capture_opts {
	const char *model;     /* target checkpoint */
	const char *tokenizer; /* NULL: tok512.bin/tokenizer.bin beside model */
	const char *draft;     /* separate draft checkpoint, or NULL */
	const char *
	        draft_tokenizer; /* NULL: same-named file beside draft, else target's */
	const char *skip_layers; /* 1-based list, or NULL */
	int quant_bits;          /* 0, 8 or 4 */
	const char *prompts;     /* prompt file */
	const char *out;         /* trace path */
	double temperature;      /* 0: greedy */
	double top_p;            /* 1: off */
	uint64_t seed;
	uint32_t lookahead;   /* K */
	uint32_t max_new;     /* per prompt */
	uint32_t max_prompts; /* 0: all */
	int no_stop;          /* 1: do not stop at BOS/EOS */
	const char *date;     /* NULL: SOURCE_DATE_EPOCH or now */
	int progress;         /* progress line on stderr */
	FILE *text;           /* when set, generated text is printed here */
};

void capture_opts_init(struct capture_opts *o);

/* The model pair a capture runs. */
struct capture_pair {
	struct llm_model *target, *draft;
	struct llm_tokenizer *tok;
	char target_name[TRACE_NAME_MAX], draft_name[TRACE_NAME_MAX];
	char tokenizer_path[4096], draft_tokenizer_path[4096];
	char target_sha[65], draft_sha[65], tok_sha[65], draft_tok_sha[65];
	int seq_len; /* min of the two models' contexts */
};

/** Open target, tokenizer and draft as the options say (checks that the
 * pair shares vocabulary and tokenizer). */
int capture_pair_open(struct capture_pair *p, const struct capture_opts *o,
                      char *err, size_t errlen);
void capture_pair_close(struct capture_pair *p);

/** Read prompts: one per line, or JSON lines {"prompt": "..."}; blank lines
 * are skipped. Error when the file holds no prompt. */
int capture_read_prompts(const char *path, char ***prompts, size_t *n,
                         char *err, size_t errlen);
void capture_free_prompts(char ***prompts, size_t n);

/** Sampling distribution from logits: greedy (temperature 0) gives the
 * plain softmax (T = 1) used for entropy and top-1; sampled applies
 * temperature and top-p and renormalizes. idx: scratch of n ints. */
void capture_dist(float *probs, const float *logits, int n, double temperature,
                  double top_p, int *idx);
/** sum_x min(p(x), q(x)), clamped to [0, 1]. */
double capture_overlap(const float *p, const float *q, int n);

struct capture_stats {
	uint64_t sequences, tokens, forwards;
	uint64_t accepted_positions; /* a_p == 1 */
	double sum_accept;
	double seconds;
};

/** Run a capture and write opts->out. */
int capture_run(const struct capture_opts *o, struct capture_stats *st,
                char *err, size_t errlen);

/** Convert a JSON-lines trace (capture/IMPORT.md) to a version-1 trace. */
int capture_import(const char *in, const char *out, char *err, size_t errlen);

#endif
