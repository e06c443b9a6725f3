/* main.c - ahasd-capture: capture traces from real llama2.c model runs,
 * generate text (an inference check), import JSON-lines traces. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"

static void usage(FILE *f)
{
	fputs("usage: ahasd-capture [run] -m MODEL.bin -p PROMPTS -o "
	      "OUT.msgpack DRAFT [options]\n"
	      "       ahasd-capture generate -m MODEL.bin [-z TOK] [-n N] "
	      "[--temperature T]\n"
	      "                              [--top-p P] [--seed S] PROMPT\n"
	      "       ahasd-capture import IN.jsonl -o OUT.msgpack\n"
	      "\n"
	      "DRAFT (one or more; skip and quant apply to --draft FILE or to "
	      "the target):\n"
	      "  --draft FILE              separate draft checkpoint (same "
	      "vocabulary)\n"
	      "  --draft-tokenizer FILE    its tokenizer (default: same-named "
	      "file beside it,\n"
	      "                            else the target's); must equal the "
	      "target's\n"
	      "  --draft-skip-layers LIST  skip these 1-based layers, e.g. 3 "
	      "or 2,4\n"
	      "  --draft-quant int8|int4   group-wise symmetric weight "
	      "quantization\n"
	      "options:\n"
	      "  -z, --tokenizer FILE      default: tok512.bin or "
	      "tokenizer.bin beside MODEL\n"
	      "  -p, --prompts FILE        one prompt per line, or JSON lines "
	      "{\"prompt\": ...}\n"
	      "  -o, --output FILE         trace to write\n"
	      "  --temperature T           0 = greedy (default); > 0 sampled\n"
	      "  --top-p P                 nucleus sampling, (0, 1], default "
	      "1\n"
	      "  --seed N                  sampling seed (default 0)\n"
	      "  --lookahead K             continuation entropies per "
	      "rejection (default 16)\n"
	      "  --max-new-tokens N        per prompt (default 256)\n"
	      "  --max-prompts N           use the first N prompts only\n"
	      "  --no-stop                 do not stop a sequence at BOS/EOS\n"
	      "  --date ISO8601            date recorded in provenance "
	      "(default:\n"
	      "                            SOURCE_DATE_EPOCH, else now)\n"
	      "  --print-text              print each generated sequence on "
	      "stdout\n"
	      "  -q, --quiet               no progress line\n"
	      "  -V, --version, -h, --help\n",
	      f);
}

enum {
	OPT_DRAFT = 256,
	OPT_DRAFT_TOK,
	OPT_SKIP,
	OPT_QUANT,
	OPT_TEMP,
	OPT_TOPP,
	OPT_SEED,
	OPT_LOOKAHEAD,
	OPT_MAXNEW,
	OPT_MAXPROMPTS,
	OPT_NOSTOP,
	OPT_DATE,
	OPT_TEXT,
};

static const struct option long_opts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "tokenizer", required_argument, NULL, 'z' },
	{ "prompts", required_argument, NULL, 'p' },
	{ "output", required_argument, NULL, 'o' },
	{ "steps", required_argument, NULL, 'n' },
	{ "draft", required_argument, NULL, OPT_DRAFT },
	{ "draft-tokenizer", required_argument, NULL, OPT_DRAFT_TOK },
	{ "draft-skip-layers", required_argument, NULL, OPT_SKIP },
	{ "draft-quant", required_argument, NULL, OPT_QUANT },
	{ "temperature", required_argument, NULL, OPT_TEMP },
	{ "top-p", required_argument, NULL, OPT_TOPP },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "lookahead", required_argument, NULL, OPT_LOOKAHEAD },
	{ "max-new-tokens", required_argument, NULL, OPT_MAXNEW },
	{ "max-prompts", required_argument, NULL, OPT_MAXPROMPTS },
	{ "no-stop", no_argument, NULL, OPT_NOSTOP },
	{ "date", required_argument, NULL, OPT_DATE },
	{ "print-text", no_argument, NULL, OPT_TEXT },
	{ "quiet", no_argument, NULL, 'q' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_u64(const char *opt, const char *s, uint64_t max,
                     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr,
		        "ahasd-capture: %s \"%s\": expected an integer in "
		        "0..%" PRIu64 "\n",
		        opt, s, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < 0.0) {
		fprintf(stderr,
		        "ahasd-capture: %s \"%s\": expected a number >= 0\n",
		        opt, s);
		return -EINVAL;
	}
	return 0;
}

static int cmd_generate(const struct capture_opts *o, uint64_t steps,
                        const char *prompt)
{
	struct capture_opts go = *o;
	struct capture_pair p;
	char err[1024];
	int *toks = NULL, n, ret = 1, V;
	float *probs = NULL;
	int *idx = NULL;
	size_t cap = strlen(prompt) + 3;

	/* generate runs the target alone: use it as its own (unused) draft */
	if (!go.draft && !go.skip_layers && !go.quant_bits)
		go.draft = go.model;
	if (capture_pair_open(&p, &go, err, sizeof err)) {
		fprintf(stderr, "ahasd-capture: %s\n", err);
		return 1;
	}
	V = p.target->cfg.vocab_size;
	toks = malloc(cap * sizeof *toks);
	probs = malloc((size_t)V * sizeof *probs);
	idx = malloc((size_t)V * sizeof *idx);
	if (!toks || !probs || !idx) {
		fprintf(stderr, "ahasd-capture: out of memory\n");
		goto error;
	}
	n = llm_encode(p.tok, prompt, toks, cap);
	if (n < 0 || n > p.target->cfg.seq_len) {
		fprintf(stderr,
		        "ahasd-capture: prompt is %d tokens, longer than the "
		        "model's context (seq_len %d)\n",
		        n, p.target->cfg.seq_len);
		goto error;
	}
	{
		int tok = toks[0];
		uint64_t end = (uint64_t)n - 1 + steps;
		if (end > (uint64_t)p.target->cfg.seq_len - 1)
			end = (uint64_t)p.target->cfg.seq_len - 1;
		for (int pos = 0; (uint64_t)pos < end; pos++) {
			const float *lg = llm_forward(p.target, tok, pos);
			int next;
			if (pos + 1 < n) {
				next = toks[pos + 1];
			} else if (o->temperature <= 0.0) {
				next = llm_argmax(lg, V);
			} else {
				capture_dist(probs, lg, V, o->temperature,
				             o->top_p, idx);
				next = llm_sample(probs, V,
				                  llm_rng_uniform(o->seed, 0,
				                                  (uint64_t)pos,
				                                  0));
			}
			fputs(llm_decode(p.tok, tok, next), stdout);
			tok = next;
		}
		fputc('\n', stdout);
	}
	ret = 0;
error:
	free(toks);
	free(probs);
	free(idx);
	capture_pair_close(&p);
	return ret;
}

int main(int argc, char **argv)
{
	struct capture_opts o;
	struct capture_stats st;
	const char *cmd = "run";
	char err[2048];
	uint64_t v, steps = 256;
	int c, quiet = 0, text = 0;

	capture_opts_init(&o);
	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	if (strcmp(cmd, "run") && strcmp(cmd, "generate") &&
	    strcmp(cmd, "import")) {
		fprintf(stderr, "ahasd-capture: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	while ((c = getopt_long(argc, argv, "m:z:p:o:n:qVh", long_opts,
	                        NULL)) != -1) {
		switch (c) {
		case 'm': o.model = optarg; break;
		case 'z': o.tokenizer = optarg; break;
		case 'p': o.prompts = optarg; break;
		case 'o': o.out = optarg; break;
		case 'n':
			if (parse_u64("-n", optarg, 1u << 20, &steps))
				return 2;
			break;
		case OPT_DRAFT: o.draft = optarg; break;
		case OPT_DRAFT_TOK: o.draft_tokenizer = optarg; break;
		case OPT_SKIP: o.skip_layers = optarg; break;
		case OPT_QUANT:
			if (strcmp(optarg, "int8") == 0) {
				o.quant_bits = 8;
			} else if (strcmp(optarg, "int4") == 0) {
				o.quant_bits = 4;
			} else {
				fprintf(stderr,
				        "ahasd-capture: --draft-quant \"%s\": "
				        "expected "
				        "int8 or int4\n",
				        optarg);
				return 2;
			}
			break;
		case OPT_TEMP:
			if (parse_double("--temperature", optarg,
			                 &o.temperature))
				return 2;
			break;
		case OPT_TOPP:
			if (parse_double("--top-p", optarg, &o.top_p))
				return 2;
			break;
		case OPT_SEED:
			if (parse_u64("--seed", optarg, UINT64_MAX, &o.seed))
				return 2;
			break;
		case OPT_LOOKAHEAD:
			if (parse_u64("--lookahead", optarg, 4096, &v))
				return 2;
			o.lookahead = (uint32_t)v;
			break;
		case OPT_MAXNEW:
			if (parse_u64("--max-new-tokens", optarg, 1u << 20, &v))
				return 2;
			o.max_new = (uint32_t)v;
			break;
		case OPT_MAXPROMPTS:
			if (parse_u64("--max-prompts", optarg, UINT32_MAX, &v))
				return 2;
			o.max_prompts = (uint32_t)v;
			break;
		case OPT_NOSTOP: o.no_stop = 1; break;
		case OPT_DATE: o.date = optarg; break;
		case OPT_TEXT: text = 1; break;
		case 'q': quiet = 1; break;
		case 'V': printf("ahasd-capture %s\n", AHASD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (strcmp(cmd, "import") == 0) {
		if (optind != argc - 1 || !o.out) {
			fprintf(stderr,
			        "ahasd-capture import: expected IN.jsonl and "
			        "-o OUT.msgpack\n");
			return 2;
		}
		if (capture_import(argv[optind], o.out, err, sizeof err)) {
			fprintf(stderr, "ahasd-capture import: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (strcmp(cmd, "generate") == 0) {
		if (optind != argc - 1 || !o.model) {
			fprintf(stderr,
			        "ahasd-capture generate: expected -m MODEL and "
			        "one PROMPT argument\n");
			return 2;
		}
		return cmd_generate(&o, steps, argv[optind]);
	}
	if (optind != argc) {
		fprintf(stderr, "ahasd-capture: unexpected argument \"%s\"\n",
		        argv[optind]);
		return 2;
	}
	if (!o.model || !o.prompts || !o.out) {
		fprintf(stderr, "ahasd-capture: need -m MODEL, -p PROMPTS and "
		                "-o OUT\n");
		usage(stderr);
		return 2;
	}
	if (text && strcmp(o.out, "-") == 0) {
		/* both would go to standard output, mixed */
		fprintf(stderr,
		        "ahasd-capture: --print-text and -o - both write "
		        "to standard output; pick one\n");
		return 2;
	}
	o.progress = !quiet && isatty(STDERR_FILENO);
	o.text = text ? stdout : NULL;
	if (capture_run(&o, &st, err, sizeof err)) {
		fprintf(stderr, "ahasd-capture: %s\n", err);
		return 1;
	}
	if (!quiet)
		fprintf(stderr,
		        "ahasd-capture: %s: %" PRIu64 " sequences, %" PRIu64
		        " tokens, mean a_p %.4f, %.1f s (%.0f target tok/s)\n",
		        o.out, st.sequences, st.tokens,
		        st.tokens ? st.sum_accept / (double)st.tokens : 0.0,
		        st.seconds,
		        st.seconds > 0 ? (double)st.tokens / st.seconds : 0.0);
	return 0;
}
