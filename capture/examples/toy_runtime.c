/* toy_runtime.c - a toy inference runtime that writes an ahasd-replay trace
 * through the C capture API (ahasd_capture.h).
 *
 * The "models" are hash functions of the last two tokens (no weights), so
 * the program needs nothing but libc and libm; what matters is where a
 * real runtime (llama.cpp style: a forward per token, logits out) calls
 * the API. Build it outside the ahasd-replay tree with
 *
 *     cc toy_runtime.c $(pkg-config --cflags --libs ahasd-capture) -lm
 *
 * and run  ./toy_runtime OUT.msgpack [--sampled | --lookup]. The trace
 * replays as is:
 *     ahasd-replay --policy ahasd --drafter adaedl OUT.msgpack
 *
 * --lookup writes what a runtime with a draft that has no model writes
 * (trace format 1.1, API 2): a prompt-lookup drafter proposes the tokens
 * that followed the last earlier occurrence of the token before the
 * position, up to R of them, and the trace records how many of them the
 * target confirmed (accepted-run lengths), without entropies. It replays
 * with fixed-length drafting (AdaEDL, which needs entropies, is refused):
 *     ahasd-replay --policy sync --drafter fixed OUT.msgpack
 */
#include <ahasd_capture.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	VOCAB = 64, /* token ids 0..63; 2 is EOS */
	EOS = 2,
	CONTEXT = 256, /* the models' seq_len */
	LOOKAHEAD = 8, /* K: continuation entropies per rejection */
	MAX_NEW = 96,  /* tokens generated per prompt at most */
	LOOKUP_R = 4,  /* --lookup: tokens a lookup proposes at most */
};

/* ---- the toy models ---------------------------------------------------- */

/* A model maps the last two tokens to logits. The draft is the target plus
 * a perturbation, so it agrees with the target on most tokens, as a small
 * draft model does. */
struct toy_model {
	const char *name;
	uint64_t salt; /* which hash: the target and the draft differ */
	float noise;   /* the draft's distance from the target */
};

static double hash_unit(uint64_t x) /* splitmix64 -> [-1, 1) */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (double)(x >> 11) / 4503599627370496.0 - 1.0;
}

/* logits of the token after ctx[0..n) */
static void toy_forward(const struct toy_model *m, const int *ctx, int n,
                        float logits[VOCAB])
{
	uint64_t a = n > 1 ? (uint64_t)ctx[n - 2] : 0;
	uint64_t b = n > 0 ? (uint64_t)ctx[n - 1] : 0;
	/* each context has a likely next token, strongly (an easy position)
	 * or weakly (a hard one) */
	uint64_t ab = a * VOCAB + b;
	int likely = (int)((hash_unit(~ab) + 1.0) * VOCAB / 2) % VOCAB;
	double margin = 3.0 + 3.0 * hash_unit(ab ^ 0xabcdefull);

	for (int x = 0; x < VOCAB; x++) {
		double t = 2.0 * hash_unit(ab * VOCAB + (uint64_t)x);
		double d = m->noise *
		           hash_unit(m->salt ^ ((b * VOCAB + (uint64_t)x) *
		                                0x100000001b3ull));
		logits[x] = (float)(t + d + (x == likely ? margin : 0.0));
	}
	logits[EOS] -= 3.0f; /* sequences run for a while */
}

/* probs = softmax(logits / T) */
static void softmax(float *probs, const float *logits, double T)
{
	double max = logits[0], sum = 0.0;

	for (int i = 1; i < VOCAB; i++)
		max = logits[i] > max ? logits[i] : max;
	for (int i = 0; i < VOCAB; i++) {
		double e = exp(((double)logits[i] - max) / T);
		probs[i] = (float)e;
		sum += e;
	}
	for (int i = 0; i < VOCAB; i++)
		probs[i] = (float)(probs[i] / sum);
}

static int argmax(const float *p)
{
	int best = 0;

	for (int i = 1; i < VOCAB; i++)
		best = p[i] > p[best] ? i : best;
	return best;
}

static float entropy(const float *p)
{
	double h = 0.0;

	for (int i = 0; i < VOCAB; i++)
		if (p[i] > 0.0f)
			h -= p[i] * log(p[i]);
	return (float)h;
}

static int sample(const float *p, double u)
{
	double cdf = 0.0;

	for (int i = 0; i < VOCAB; i++) {
		cdf += p[i];
		if (u < cdf)
			return i;
	}
	return VOCAB - 1;
}

static double uniform(uint64_t *state) /* [0, 1) */
{
	return (hash_unit((*state)++) + 1.0) / 2.0;
}

/* ---- the capture ------------------------------------------------------- */

static int fail(const char *what, const char *msg)
{
	fprintf(stderr, "toy_runtime: %s: %s\n", what, msg);
	return 1;
}

static const int prompts[][6] = {
	{ 1, 17, 40, 5, 9, 33 },
	{ 1, 8, 8, 60, 12, 3 },
	{ 1, 50, 21, 44, 7, 19 },
	{ 1, 30, 2, 11, 11, 58 },
};

/* What the models are, for the hardware model of the replay: their shapes
 * (here: pretend llama-style dims, n_ops 0 = the standard llama op list
 * derived from them; a real runtime lists the operators it executed in
 * ops[]) and weights as run. */
static void describe(struct ahasd_capture_model *m, const char *name,
                     uint32_t n_layers)
{
	m->name = name;
	m->dim = 256;
	m->hidden_dim = 768;
	m->n_layers = n_layers;
	m->n_heads = 8;
	m->n_kv_heads = 4;
	m->vocab_size = VOCAB;
	m->seq_len = CONTEXT;
	m->weight_bits = 16;
}

/* --lookup: the target generates greedily; at each generated position p
 * the lookup proposes the LOOKUP_R tokens after the last earlier
 * occurrence of ctx[p-1], and the run is how many of them, in order, the
 * target's tokens p, p+1, ... are (those the sequence holds). */
static int run_lookup(const char *out, const struct toy_model *target)
{
	struct ahasd_capture_model tm = AHASD_CAPTURE_MODEL_INIT;
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture *cap = NULL;
	char err[1024];

	describe(&tm, target->name, 8);
	cfg.target = &tm;
	cfg.draft = NULL;                   /* no draft model ... */
	cfg.draft_lookup = "prompt_lookup"; /* ... a lookup */
	cfg.accept_run_max = LOOKUP_R;      /* runs of up to R drafted tokens;
	                                     * tree_tokens 0: a chain, T = R */
	cfg.no_entropy = 1;                 /* a lookup has no distribution */
	if (ahasd_capture_open(&cap, out, &cfg, err, sizeof err) < 0)
		return fail("open", err);
	ahasd_capture_provenance(cap, "runtime",
	                         "toy_runtime --lookup (capture/examples)");
	ahasd_capture_provenance(cap, "target_model", target->name);
	for (size_t s = 0; s < sizeof prompts / sizeof prompts[0]; s++) {
		const int P = (int)(sizeof prompts[s] / sizeof prompts[s][0]);
		int ctx[CONTEXT], end = P;
		float lt[VOCAB], pt[VOCAB];

		memcpy(ctx, prompts[s], sizeof prompts[s]);
		while (end < P + MAX_NEW && end < CONTEXT) {
			toy_forward(target, ctx, end, lt);
			/* text repeats itself: the target leans towards what
			 * followed the last earlier occurrence of its last token
			 * (an "induction head"), which is what a lookup bets on */
			for (int q = end - 2; q >= 0; q--)
				if (ctx[q] == ctx[end - 1]) {
					lt[ctx[q + 1]] += 2.0f;
					break;
				}
			softmax(pt, lt, 1.0);
			ctx[end] = argmax(pt);
			if (ctx[end++] == EOS)
				break;
		}
		ahasd_capture_begin(cap, (uint32_t)s, (uint32_t)P);
		for (int p = P; p < end; p++) {
			uint32_t run = 0;

			for (int q = p - 1; q >= 1; q--) {
				if (ctx[q - 1] != ctx[p - 1])
					continue;
				/* proposal: ctx[q], ctx[q+1], ... (before p) */
				while (run < LOOKUP_R && q + (int)run < p &&
				       p + (int)run < end &&
				       ctx[q + (int)run] == ctx[p + (int)run])
					run++;
				break;
			}
			/* entropy and top-1 are not read without entropies */
			ahasd_capture_pos_run(cap, 0.0f, 0.0f, run, ctx[p]);
		}
		ahasd_capture_end(cap);
	}
	if (ahasd_capture_close(&cap, err, sizeof err) < 0)
		return fail("capture", err);
	return 0;
}

int main(int argc, char **argv)
{
	const struct toy_model target = { "toy-target", 0, 0.0f };
	const struct toy_model draft = { "toy-draft", 0x5eed, 1.0f };
	const int sampled = argc > 2 && strcmp(argv[2], "--sampled") == 0;
	const int lookup = argc > 2 && strcmp(argv[2], "--lookup") == 0;
	const double T = sampled ? 0.8 : 1.0;
	struct ahasd_capture_model tm = AHASD_CAPTURE_MODEL_INIT;
	struct ahasd_capture_model dm = AHASD_CAPTURE_MODEL_INIT;
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture *cap = NULL;
	uint64_t rng = 42;
	char err[1024];

	if (argc < 2 || (argc > 2 && !sampled && !lookup) || argc > 3) {
		fprintf(stderr, "usage: toy_runtime OUT.msgpack [--sampled | "
		                "--lookup]\n");
		return 2;
	}
	if (lookup)
		return run_lookup(argv[1], &target);

	describe(&tm, target.name, 8);
	describe(&dm, draft.name, 2);
	cfg.lookahead = LOOKAHEAD;
	cfg.sampled = sampled;
	cfg.temperature = T;
	cfg.seed = rng;
	cfg.target = &tm;
	cfg.draft = &dm;

	if (ahasd_capture_open(&cap, argv[1], &cfg, err, sizeof err) < 0)
		return fail("open", err);
	/* Provenance, free-form: say what ran and how. The library adds tool,
	 * tool_version and date unless given. */
	ahasd_capture_provenance(cap, "runtime",
	                         "toy_runtime (capture/examples)");
	ahasd_capture_provenance(cap, "target_model", target.name);
	ahasd_capture_provenance(cap, "draft_model", draft.name);
	ahasd_capture_provenance(cap, "prompt_source",
	                         "four built-in token lists");

	for (size_t s = 0; s < sizeof prompts / sizeof prompts[0]; s++) {
		const int P = (int)(sizeof prompts[s] / sizeof prompts[s][0]);
		int ctx[CONTEXT], cont_ctx[CONTEXT];
		float lt[VOCAB], ld[VOCAB], pt[VOCAB], pd[VOCAB];
		float cont[LOOKAHEAD];

		memcpy(ctx, prompts[s], sizeof prompts[s]);
		ahasd_capture_begin(cap, (uint32_t)s, (uint32_t)P);
		for (int n = P; n < P + MAX_NEW && n + LOOKAHEAD <= CONTEXT;
		     n++) {
			int y, d;
			float a;

			/* Both models read the TRUE prefix: the target's tokens. */
			toy_forward(&target, ctx, n, lt);
			toy_forward(&draft, ctx, n, ld);
			softmax(pt, lt, T);
			softmax(pd, ld, T);
			if (sampled) {
				/* a_p = sum_x min(p_target(x), p_draft(x)) */
				double ov = 0.0;

				for (int x = 0; x < VOCAB; x++)
					ov += pt[x] < pd[x] ? pt[x] : pd[x];
				a = (float)(ov > 1.0 ? 1.0 : ov);
				y = sample(pt, uniform(&rng));
				d = sample(pd, uniform(&rng));
			} else {
				y = argmax(pt);
				d = argmax(pd);
				a = d == y ? 1.0f : 0.0f;
			}
			/* Where the draft's token can be rejected: what the draft
			 * sees running on from its own token for K steps (a
			 * look-ahead drafter's entropies after a wrong token). */
			if (a < 1.0f) {
				int c = d;

				memcpy(cont_ctx, ctx, (size_t)n * sizeof *ctx);
				for (int j = 0; j < LOOKAHEAD; j++) {
					float l[VOCAB], p[VOCAB];

					cont_ctx[n + j] = c;
					toy_forward(&draft, cont_ctx, n + j + 1,
					            l);
					softmax(p, l, T);
					cont[j] = entropy(p);
					c = sampled ? sample(p, uniform(&rng))
					            : argmax(p);
				}
			}
			ahasd_capture_pos(cap, entropy(pd), pd[argmax(pd)], a,
			                  y, a < 1.0f ? cont : NULL);
			ctx[n] = y;
			if (y == EOS)
				break;
		}
		ahasd_capture_end(cap);
	}
	/* Errors stick: checking the close catches any earlier one. */
	if (ahasd_capture_close(&cap, err, sizeof err) < 0)
		return fail("capture", err);
	return 0;
}
