/* trace_synth.c - `ahasd-trace synth`: synthetic traces, from a workload
 * profile (replay/workload.c) or from the simple two-regime generator
 * below, written through the trace writer. Part of the ahasd-trace
 * program (tools/ahasd-trace.c holds info, validate and fit). */
#include "ahasd-trace.h"
#include "config.h"
#include "trace.h"
#include "workload.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* synth                                                                     */

struct synth_model {
	const char *name;
	uint32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
};

static const struct synth_model synth_models[] = {
	{ "llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096 },
	{ "llama2-13b", 5120, 13824, 40, 40, 40, 32000, 4096 },
	{ "tiny", 64, 172, 5, 8, 4, 512, 512 },
};

/* splitmix64 to seed, xoshiro256** to draw */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s[4];
};

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	const uint64_t result = rotl(r->s[1] * 5, 7) * 9;
	const uint64_t t = r->s[1] << 17;

	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return result;
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

/* uniform in (0, 1) */
static double rng_unit(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Gamma(shape, mean/shape) for integer shape: sum of exponentials. */
static double rng_gamma(struct rng *r, int shape, double mean)
{
	double s = 0.0;

	for (int i = 0; i < shape; i++)
		s -= log(rng_unit(r));
	return s * mean / shape;
}

struct synth_params {
	uint32_t sequences, tokens, prompt_len, lookahead;
	uint64_t seed;
	bool sampled;
	const struct synth_model *draft, *target;
};

/* Generator constants (documented in traces/FORMAT.md). */
#define SYN_P_EASY_TO_HARD 0.15
#define SYN_P_HARD_TO_EASY 0.35
#define SYN_H_EASY         0.8 /* mean entropy, nats */
#define SYN_H_HARD         2.4
#define SYN_ACC_MID        1.7  /* logistic midpoint, nats */
#define SYN_ACC_SCALE      0.35 /* logistic width, nats */
#define SYN_ACC_MAX        0.97

static float synth_entropy(struct rng *r, bool hard, double h_max)
{
	double h = hard ? rng_gamma(r, 4, SYN_H_HARD)
	                : rng_gamma(r, 3, SYN_H_EASY);

	return (float)(h > h_max ? h_max : h);
}

static void synth_seq(const struct synth_params *P, uint32_t id,
                      struct trace_seq *s, double h_max)
{
	struct rng r;
	bool hard;

	rng_seed(&r, P->seed, id + 1);
	hard = rng_unit(&r) <
	       SYN_P_EASY_TO_HARD / (SYN_P_EASY_TO_HARD + SYN_P_HARD_TO_EASY);
	s->id = id;
	s->prompt_len = P->prompt_len;
	s->n = P->tokens;
	s->tokens = NULL;
	s->n_cont = 0;
	for (uint32_t p = 0; p < s->n; p++) {
		const float h = synth_entropy(&r, hard, h_max);
		double top1 = exp(-0.9 * h) * (0.85 + 0.3 * rng_unit(&r));
		const double pa = SYN_ACC_MAX / (1.0 + exp((h - SYN_ACC_MID) /
		                                           SYN_ACC_SCALE));
		float a;

		if (top1 > 1.0)
			top1 = 1.0;
		s->entropy[p] = h;
		s->top1[p] = (float)top1;
		a = P->sampled ? (float)pa : (rng_unit(&r) < pa ? 1.0f : 0.0f);
		s->accept[p] = a;
		if (a < 1.0f) {
			float *row = &s->cont_entropy[(size_t)s->n_cont *
			                              P->lookahead];

			/* off the true path the draft is confused: hard-state
			 * entropies, slowly relaxing over the look-ahead */
			for (uint32_t j = 0; j < P->lookahead; j++)
				row[j] = synth_entropy(
				        &r, rng_unit(&r) < 0.9 - 0.01 * j,
				        h_max);
			s->cont_pos[s->n_cont++] = p;
		}
		if (hard)
			hard = rng_unit(&r) >= SYN_P_HARD_TO_EASY;
		else
			hard = rng_unit(&r) < SYN_P_EASY_TO_HARD;
	}
}

static int synth_model_fill(struct trace_model *m, const struct synth_model *sm)
{
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", sm->name);
	m->dim = sm->dim;
	m->hidden_dim = sm->hidden;
	m->n_layers = sm->layers;
	m->n_heads = sm->heads;
	m->n_kv_heads = sm->kv_heads;
	m->vocab_size = sm->vocab;
	m->seq_len = sm->seq_len;
	m->weight_bits = 8;
	return trace_model_llama_ops(m);
}

static const struct synth_model *synth_model_find(const char *name)
{
	for (size_t i = 0; i < sizeof synth_models / sizeof synth_models[0];
	     i++)
		if (strcmp(synth_models[i].name, name) == 0)
			return &synth_models[i];
	return NULL;
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max,
                     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr,
		        "ahasd-trace synth: %s: expected an integer in "
		        "[%" PRIu64 ", %" PRIu64 "], got '%s'\n",
		        opt, min, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static void synth_usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-trace synth [options] -o OUT\n"
	        "Write a SYNTHETIC trace (marked synthetic in its header): a "
	        "two-state\n"
	        "easy/hard Markov chain drives draft entropies and "
	        "acceptance.\n"
	        "  -o, --output FILE      output trace (required)\n"
	        "  --sequences N          sequences (default 32)\n"
	        "  --tokens N             generated tokens per sequence "
	        "(default 256)\n"
	        "  --prompt-len N         prompt length (default 32)\n"
	        "  --seed N               generator seed (default 1)\n"
	        "  --sampled              sampled acceptance probabilities a_p "
	        "(default greedy 0/1)\n"
	        "  --lookahead K          continuation entropies per rejection "
	        "(default 16)\n"
	        "  --draft-model NAME     draft model dims (default "
	        "llama2-7b)\n"
	        "  --target-model NAME    target model dims (default "
	        "llama2-13b)\n"
	        "  --profile NAME         a workload profile's statistics "
	        "instead of\n"
	        "                         the easy/hard chain "
	        "(traces/WORKLOADS.md);\n"
	        "                         its sequences, tokens, prompts, "
	        "lookahead and\n"
	        "                         sampling unless given as options\n"
	        "  --set KEY=VALUE        one of the profile's statistics "
	        "(repeatable;\n"
	        "                         `ahasd-trace fit` prints them)\n"
	        "models: llama2-7b, llama2-13b, tiny\n");
}

int cmd_synth(int argc, char **argv)
{
	enum {
		O_SEQ = 256,
		O_TOK,
		O_PROMPT,
		O_SEED,
		O_SAMPLED,
		O_K,
		O_DRAFT,
		O_TARGET,
		O_PROFILE,
		O_SET
	};
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "sequences", required_argument, NULL, O_SEQ },
		{ "tokens", required_argument, NULL, O_TOK },
		{ "prompt-len", required_argument, NULL, O_PROMPT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "sampled", no_argument, NULL, O_SAMPLED },
		{ "lookahead", required_argument, NULL, O_K },
		{ "draft-model", required_argument, NULL, O_DRAFT },
		{ "target-model", required_argument, NULL, O_TARGET },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "set", required_argument, NULL, O_SET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct synth_params P = {
		.sequences = 32,
		.tokens = 256,
		.prompt_len = 32,
		.lookahead = 16,
		.seed = 1,
		.sampled = false,
		.draft = &synth_models[0],
		.target = &synth_models[1],
	};
	struct trace_header h = { 0 };
	struct trace_writer *w = NULL;
	struct trace_seq s = { 0 };
	const char *out = NULL;
	char err[1024], buf[512], date[64];
	uint64_t v;
	int c, ret, status = EXIT_INVALID;
	struct wl_profile prof;
	int have_prof = 0;
	const char *sets[64];
	size_t nsets = 0;
	unsigned given = 0; /* options that override the profile */

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case O_SEQ:
		case O_TOK:
		case O_PROMPT:
		case O_K:
			if (parse_u64(c == O_SEQ      ? "--sequences"
			              : c == O_TOK    ? "--tokens"
			              : c == O_PROMPT ? "--prompt-len"
			                              : "--lookahead",
			              optarg, c == O_PROMPT ? 0 : 1,
			              c == O_K ? 1024 : 1u << 24, &v) < 0)
				return EXIT_USAGE;
			if (c == O_SEQ)
				P.sequences = (uint32_t)v;
			else if (c == O_TOK)
				P.tokens = (uint32_t)v;
			else if (c == O_PROMPT)
				P.prompt_len = (uint32_t)v;
			else
				P.lookahead = (uint32_t)v;
			given |= 1u << (c - O_SEQ);
			break;
		case O_PROFILE:
			if (wl_profile_find(optarg, &prof, err, sizeof err) <
			    0) {
				fprintf(stderr, "ahasd-trace synth: %s\n", err);
				return EXIT_USAGE;
			}
			have_prof = 1;
			break;
		case O_SET:
			if (nsets == sizeof sets / sizeof *sets) {
				fprintf(stderr,
				        "ahasd-trace synth: too many --set\n");
				return EXIT_USAGE;
			}
			sets[nsets++] = optarg;
			break;
		case O_SEED:
			if (parse_u64("--seed", optarg, 0, UINT64_MAX,
			              &P.seed) < 0)
				return EXIT_USAGE;
			break;
		case O_SAMPLED:
			P.sampled = true;
			given |= 1u << (O_SAMPLED - O_SEQ);
			break;
		case O_DRAFT:
		case O_TARGET: {
			const struct synth_model *m = synth_model_find(optarg);

			if (!m) {
				fprintf(stderr,
				        "ahasd-trace synth: unknown model "
				        "'%s' (known: llama2-7b, llama2-13b, "
				        "tiny)\n",
				        optarg);
				return EXIT_USAGE;
			}
			if (c == O_DRAFT)
				P.draft = m;
			else
				P.target = m;
			break;
		}
		case 'h': synth_usage(stdout); return 0;
		default: synth_usage(stderr); return EXIT_USAGE;
		}
	}
	if (!out || optind != argc) {
		fprintf(stderr, "ahasd-trace synth: %s\n",
		        !out ? "missing -o OUT" : "unexpected argument");
		synth_usage(stderr);
		return EXIT_USAGE;
	}
	if (nsets && !have_prof) {
		fprintf(stderr, "ahasd-trace synth: --set needs --profile\n");
		return EXIT_USAGE;
	}
	if (have_prof) {
		/* explicit options win over the profile's own */
		if (given & (1u << (O_SEQ - O_SEQ)))
			prof.sequences = P.sequences;
		if (given & (1u << (O_TOK - O_SEQ)))
			prof.tokens = P.tokens;
		if (given & (1u << (O_PROMPT - O_SEQ)))
			prof.prompt_min = prof.prompt_max = P.prompt_len;
		if (given & (1u << (O_K - O_SEQ)))
			prof.lookahead = P.lookahead;
		if (given & (1u << (O_SAMPLED - O_SEQ)))
			prof.sampled = 1;
		for (size_t i = 0; i < nsets; i++) {
			char key[64];
			const char *eq = strchr(sets[i], '=');
			if (!eq || (size_t)(eq - sets[i]) >= sizeof key) {
				fprintf(stderr,
				        "ahasd-trace synth: --set wants "
				        "KEY=VALUE, got '%s'\n",
				        sets[i]);
				return EXIT_USAGE;
			}
			memcpy(key, sets[i], (size_t)(eq - sets[i]));
			key[eq - sets[i]] = '\0';
			if (wl_profile_set(&prof, key, eq + 1, err,
			                   sizeof err) < 0) {
				fprintf(stderr, "ahasd-trace synth: %s\n", err);
				return EXIT_USAGE;
			}
		}
		if (wl_profile_finish(&prof, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-trace synth: %s\n", err);
			return EXIT_USAGE;
		}
		P.sequences = prof.sequences;
		P.tokens = prof.tokens;
		P.lookahead = prof.lookahead;
		P.sampled = prof.sampled;
	}

	h.version = TRACE_FORMAT_VERSION;
	h.lookahead = P.lookahead;
	h.sampled = P.sampled;
	h.temperature = P.sampled ? 1.0 : 0.0;
	h.top_p = 1.0;
	h.seed = P.seed;
	h.synthetic = 1;
	if (synth_model_fill(&h.draft, P.draft) < 0 ||
	    synth_model_fill(&h.target, P.target) < 0) {
		fprintf(stderr, "ahasd-trace synth: cannot build model ops\n");
		goto out;
	}
	{
		const char *sde = getenv("SOURCE_DATE_EPOCH");
		time_t now = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	snprintf(buf, sizeof buf,
	         "sequences=%" PRIu32 " tokens=%" PRIu32 " prompt_len=%" PRIu32
	         " lookahead=%" PRIu32 " seed=%" PRIu64 " %s",
	         P.sequences, P.tokens, P.prompt_len, P.lookahead, P.seed,
	         P.sampled ? "sampled" : "greedy");
	if (trace_header_add_prov(&h, "tool", "ahasd-trace synth") < 0 ||
	    trace_header_add_prov(&h, "tool_version", AHASD_VERSION) < 0 ||
	    trace_header_add_prov(&h, "date", date) < 0 ||
	    trace_header_add_prov(&h, "note",
	                          "synthetic: generated by "
	                          "ahasd-trace synth, not a model run") < 0 ||
	    trace_header_add_prov(&h, "runtime", "none (synthetic)") < 0 ||
	    trace_header_add_prov(&h, "prompt_source", "none (synthetic)") <
	            0 ||
	    trace_header_add_prov(&h, "draft_model", P.draft->name) < 0 ||
	    trace_header_add_prov(&h, "target_model", P.target->name) < 0 ||
	    trace_header_add_prov(&h, "synth_params", buf) < 0) {
		fprintf(stderr, "ahasd-trace synth: out of memory\n");
		goto out;
	}
	if (have_prof) {
		char pd[512];
		wl_profile_describe(&prof, pd, sizeof pd);
		if (trace_header_add_prov(&h, "workload_profile", prof.name) <
		            0 ||
		    trace_header_add_prov(&h, "workload_statistics", pd) < 0 ||
		    trace_header_add_prov(
		            &h, "synth_generator",
		            "workload "
		            "profile (traces/WORKLOADS.md): ln H "
		            "AR(1) normal, logistic acceptance in "
		            "ln H") < 0) {
			fprintf(stderr, "ahasd-trace synth: out of memory\n");
			goto out;
		}
	} else if (trace_header_add_prov(&h, "synth_generator",
	                                 "two-state "
	                                 "Markov easy/hard; entropy gamma(3, "
	                                 "mean 0.8) easy, gamma(4, mean 2.4) "
	                                 "hard; P(accept) = 0.97 / (1 + exp((H "
	                                 "- 1.7) / 0.35)); xoshiro256** seeded "
	                                 "by splitmix64(seed, sequence)") < 0) {
		fprintf(stderr, "ahasd-trace synth: out of memory\n");
		goto out;
	}
	s.entropy = malloc(P.tokens * sizeof(float));
	s.top1 = malloc(P.tokens * sizeof(float));
	s.accept = malloc(P.tokens * sizeof(float));
	s.cont_pos = malloc(P.tokens * sizeof(uint32_t));
	s.cont_entropy = malloc((size_t)P.tokens * P.lookahead * sizeof(float));
	if (!s.entropy || !s.top1 || !s.accept || !s.cont_pos ||
	    !s.cont_entropy) {
		fprintf(stderr, "ahasd-trace synth: out of memory\n");
		goto out;
	}
	ret = trace_writer_open(&w, out, &h, err, sizeof err);
	if (ret < 0) {
		fprintf(stderr, "ahasd-trace synth: %s\n", err);
		goto out;
	}
	for (uint32_t i = 0; i < P.sequences; i++) {
		struct trace_seq g;
		if (have_prof) {
			if (wl_generate(&prof, P.seed, i, &g) < 0) {
				fprintf(stderr,
				        "ahasd-trace synth: out of memory\n");
				trace_writer_abort(&w);
				goto out;
			}
			ret = trace_writer_add(w, &g, err, sizeof err);
			wl_seq_free(&g);
			if (ret < 0) {
				fprintf(stderr, "ahasd-trace synth: %s\n", err);
				trace_writer_abort(&w);
				goto out;
			}
			continue;
		}
		synth_seq(&P, i, &s, log((double)P.draft->vocab));
		ret = trace_writer_add(w, &s, err, sizeof err);
		if (ret < 0) {
			fprintf(stderr, "ahasd-trace synth: %s\n", err);
			trace_writer_abort(&w);
			goto out;
		}
	}
	ret = trace_writer_close(&w, err, sizeof err);
	if (ret < 0) {
		fprintf(stderr, "ahasd-trace synth: %s\n", err);
		goto out;
	}
	status = 0;
out:
	free(s.entropy);
	free(s.top1);
	free(s.accept);
	free(s.cont_pos);
	free(s.cont_entropy);
	trace_header_clear(&h);
	return status;
}
