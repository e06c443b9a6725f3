/* ahasd-trace - inspect, validate and synthesise ahasd trace files.
 *
 *   ahasd-trace info [--ops] FILE
 *   ahasd-trace validate FILE...
 *   ahasd-trace synth [options] -o OUT   (tools/trace_synth.c)
 *   ahasd-trace fit TRACE
 *
 * Exit status: 0 success, 1 invalid trace or I/O error, 2 usage error.
 */
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
/* info                                                                      */

static void print_model(const char *role, const struct trace_model *m,
                        bool list_ops)
{
	unsigned kinds[TRACE_OP_KIND_COUNT] = { 0 };
	uint64_t macs = 0;

	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];

		kinds[op->kind]++;
		if (op->kind == TRACE_OP_GEMM)
			macs += (uint64_t)op->k * op->n * op->repeat;
	}
	printf("model %s: %s\n", role, m->name);
	printf("  dim %" PRIu32 ", hidden_dim %" PRIu32 ", n_layers %" PRIu32
	       ", n_heads %" PRIu32 ", n_kv_heads %" PRIu32
	       ", vocab_size %" PRIu32 ", seq_len %" PRIu32 "\n",
	       m->dim, m->hidden_dim, m->n_layers, m->n_heads, m->n_kv_heads,
	       m->vocab_size, m->seq_len);
	printf("  weights: %" PRIu64 " bytes (%.1f MiB) at %" PRIu32 " bits\n",
	       m->weight_bytes, (double)m->weight_bytes / 1048576.0,
	       m->weight_bits);
	printf("  ops: %" PRIu32 " (", m->n_ops);
	for (int k = 0; k < TRACE_OP_KIND_COUNT; k++)
		printf("%s%s %u", k ? ", " : "",
		       trace_op_kind_name((enum trace_op_kind)k), kinds[k]);
	printf("); gemm MACs per token %" PRIu64 "\n", macs);
	if (!list_ops)
		return;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];

		printf("    %-16s %-11s k %-6" PRIu32 " n %-6" PRIu32
		       " heads %" PRIu32 "/%" PRIu32 " head_dim %" PRIu32
		       " x%" PRIu32 "\n",
		       op->name, trace_op_kind_name(op->kind), op->k, op->n,
		       op->heads, op->kv_heads, op->head_dim, op->repeat);
	}
}

struct mean {
	double sum;
	uint64_t n;
};

static void mean_add(struct mean *m, double v)
{
	m->sum += v;
	m->n++;
}

static double mean_get(const struct mean *m)
{
	return m->n ? m->sum / (double)m->n : NAN;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ops", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct trace_reader *r = NULL;
	const struct trace_header *h;
	struct trace_seq s;
	struct mean acc = { 0 }, ent = { 0 }, ent_hi = { 0 }, ent_lo = { 0 };
	struct mean len = { 0 }, plen = { 0 }, cent = { 0 }, top1 = { 0 };
	struct mean run = { 0 };
	uint64_t n_seq = 0, n_tok = 0, n_cont = 0, chain_n = 0, chain_bad = 0;
	bool list_ops = false;
	char err[1024];
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'O': list_ops = true; break;
		case 'h':
			printf("usage: ahasd-trace info [--ops] FILE\n"
			       "Print a trace's header (provenance, models) "
			       "and "
			       "statistics over its sequences.\n"
			       "  --ops   list every operator of both "
			       "models\n");
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "usage: ahasd-trace info [--ops] FILE\n");
		return EXIT_USAGE;
	}
	ret = trace_reader_open(&r, argv[optind], err, sizeof err);
	if (ret < 0) {
		fprintf(stderr, "ahasd-trace: %s\n", err);
		return EXIT_INVALID;
	}
	h = trace_reader_header(r);
	printf("file: %s\n", argv[optind]);
	if (!h->features) {
		printf("format version %" PRIu32
		       ", %s%s, temperature %g, top_p "
		       "%g, seed %" PRIu64 ", lookahead K %" PRIu32 "\n",
		       h->version, h->sampled ? "sampled" : "greedy",
		       h->synthetic ? " (SYNTHETIC, not a model run)" : "",
		       h->temperature, h->top_p, h->seed, h->lookahead);
	} else {
		printf("format version %" PRIu32 ".1 (features:", h->version);
		for (uint32_t b = 1; b & TRACE_F_ALL; b <<= 1)
			if (h->features & b)
				printf(" %s", trace_feature_name(
				                      (enum trace_feature)b));
		printf("), %s%s, temperature %g, top_p %g, seed %" PRIu64,
		       h->sampled ? "sampled" : "greedy",
		       h->synthetic ? " (SYNTHETIC, not a model run)" : "",
		       h->temperature, h->top_p, h->seed);
		if (trace_header_entropy_full(h))
			printf(", lookahead K %" PRIu32, h->lookahead);
		printf("\n");
		if (h->features & TRACE_F_ACCEPT_RUNS)
			printf("accepted runs: measured at draft length R "
			       "%" PRIu32 ", tree_tokens T %" PRIu32
			       " (%s: a verification "
			       "of d levels feeds 1 + ceil(d*T/R) tokens)\n",
			       h->run_max, h->tree_tokens,
			       h->tree_tokens == h->run_max ? "a chain"
			                                    : "a tree");
		if (!trace_header_entropy_full(h))
			printf("entropies: %s; plugins that need them are "
			       "refused\n",
			       trace_header_has_entropy(h)
			               ? "true-prefix only (no continuations)"
			               : "none");
	}
	printf("provenance:\n");
	for (size_t i = 0; i < h->n_prov; i++)
		printf("  %s: %s\n", h->prov[i].key, h->prov[i].value);
	if (h->features & TRACE_F_DRAFT_LOOKUP)
		printf("draft: the lookup \"%s\" (no model: costs the "
		       "preset's lookup_s per batch)\n",
		       h->draft_lookup);
	else
		print_model("draft", &h->draft, list_ops);
	print_model("target", &h->target, list_ops);

	while ((ret = trace_reader_next(r, &s, err, sizeof err)) > 0) {
		n_seq++;
		n_tok += s.n;
		n_cont += s.n_cont;
		mean_add(&len, s.n);
		mean_add(&plen, s.prompt_len);
		for (uint32_t p = 0; p < s.n; p++) {
			const bool hi = h->sampled ? s.accept[p] >= 0.5f
			                           : s.accept[p] >= 1.0f;

			mean_add(&acc, s.accept[p]);
			if (s.accept_run) {
				const uint32_t q = s.accept_run[p];

				mean_add(&run, q);
				/* a chain's run from p + 1 is q - 1 (R - 1 or R
				 * after a full run) */
				if (q > 0 && p + 1 < s.n) {
					const uint32_t nx = s.accept_run[p + 1];

					chain_n++;
					chain_bad += q < h->run_max
					                     ? nx != q - 1
					                     : nx + 1 < q;
				}
			}
			if (!s.entropy)
				continue;
			mean_add(&ent, s.entropy[p]);
			mean_add(&top1, s.top1[p]);
			mean_add(hi ? &ent_hi : &ent_lo, s.entropy[p]);
		}
		for (size_t i = 0; i < (size_t)s.n_cont * h->lookahead; i++)
			mean_add(&cent, s.cont_entropy[i]);
	}
	if (ret < 0) {
		fprintf(stderr, "ahasd-trace: %s\n", err);
		trace_reader_close(&r);
		return EXIT_INVALID;
	}
	printf("sequences: %" PRIu64 "\n", n_seq);
	printf("tokens: %" PRIu64 "\n", n_tok);
	printf("mean generated length: %.2f tokens (mean prompt length %.2f)\n",
	       mean_get(&len), mean_get(&plen));
	if (h->features & TRACE_F_ACCEPT_RUNS) {
		printf("mean accepted run: %.4f tokens (one-token acceptance "
		       "%.4f)\n",
		       mean_get(&run), mean_get(&acc));
		printf("positions a chain would predict (run > 0): %" PRIu64
		       ", the next run not what a chain gives: %" PRIu64
		       " (%.1f%%)\n",
		       chain_n, chain_bad,
		       chain_n ? 100.0 * (double)chain_bad / (double)chain_n
		               : 0.0);
	} else {
		printf("mean acceptance: %.4f\n", mean_get(&acc));
	}
	if (!trace_header_has_entropy(h)) {
		printf("entropies: none\n");
		trace_reader_close(&r);
		return 0;
	}
	printf("mean draft top-1 probability: %.4f\n", mean_get(&top1));
	printf("mean entropy: %.4f nats\n", mean_get(&ent));
	printf("mean entropy where %s: %.4f nats (%" PRIu64 " positions)\n",
	       h->sampled ? "a_p >= 0.5" : "a_p = 1", mean_get(&ent_hi),
	       ent_hi.n);
	printf("mean entropy where %s: %.4f nats (%" PRIu64 " positions)\n",
	       h->sampled ? "a_p < 0.5" : "a_p = 0", mean_get(&ent_lo),
	       ent_lo.n);
	if (trace_header_entropy_full(h))
		printf("continuations: %" PRIu64 " (mean continuation entropy "
		       "%.4f nats)\n",
		       n_cont, mean_get(&cent));
	trace_reader_close(&r);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* validate                                                                  */

static int validate_one(const char *path)
{
	struct trace_reader *r = NULL;
	struct trace_seq s;
	uint64_t n_seq = 0, n_tok = 0;
	char err[1024];
	int ret;

	ret = trace_reader_open(&r, path, err, sizeof err);
	if (ret < 0)
		goto error;
	while ((ret = trace_reader_next(r, &s, err, sizeof err)) > 0)
		;
	if (ret < 0)
		goto error;
	trace_reader_totals(r, &n_seq, &n_tok);
	printf("%s: ok (%" PRIu64 " sequences, %" PRIu64 " tokens)\n", path,
	       n_seq, n_tok);
	trace_reader_close(&r);
	return 0;
error:
	fprintf(stderr, "%s\n", err);
	trace_reader_close(&r);
	return ret;
}

static int cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, status = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("usage: ahasd-trace validate FILE...\n"
			       "Check every structural and range rule of "
			       "format "
			       "1.0 and 1.1; print \"FILE: ok (N sequences, T "
			       "tokens)\"\n"
			       "or the first error of each file. Exit 0 if all "
			       "are valid, 1 otherwise.\n");
			return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: ahasd-trace validate FILE...\n");
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++)
		if (validate_one(argv[i]) < 0)
			status = EXIT_INVALID;
	return status;
}

/* ------------------------------------------------------------------------ */
/* fit                                                                       */

static int cmd_fit(int argc, char **argv)
{
	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc == 2 ? stdout : stderr;
		fprintf(f,
		        "usage: ahasd-trace fit TRACE\n"
		        "Estimate a workload profile's statistics from a trace "
		        "(traces/WORKLOADS.md), with\nstandard errors, and "
		        "print "
		        "them as ahasd-trace synth --set options.\n");
		return argc == 2 ? 0 : EXIT_USAGE;
	}
	struct trace_reader *rd = NULL;
	struct wl_fit *f = NULL;
	struct wl_profile est, se;
	struct trace_seq s;
	char err[1024];
	int rc, status = EXIT_INVALID;
	if (trace_reader_open(&rd, argv[1], err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-trace fit: %s\n", err);
		return EXIT_INVALID;
	}
	const struct trace_header *h = trace_reader_header(rd);
	if (!trace_header_entropy_full(h)) {
		/* a profile is a chain with entropies and continuations */
		fprintf(stderr,
		        "ahasd-trace fit: %s: a workload profile needs "
		        "per-position acceptance, entropies and continuation "
		        "rows; this format 1.1 trace has %s\n",
		        argv[1],
		        h->features & TRACE_F_ACCEPT_RUNS
		                ? "accepted-run lengths (not a chain) and no "
		                  "continuations"
		                : "no entropies");
		goto out;
	}
	if (wl_fit_new(&f) < 0) {
		fprintf(stderr, "ahasd-trace fit: out of memory\n");
		goto out;
	}
	while ((rc = trace_reader_next(rd, &s, err, sizeof err)) == 1)
		wl_fit_add(f, &s, h->lookahead);
	if (rc < 0) {
		fprintf(stderr, "ahasd-trace fit: %s\n", err);
		goto out;
	}
	if (wl_fit_result(f, h->sampled, h->lookahead, &est, &se, err,
	                  sizeof err) < 0) {
		fprintf(stderr, "ahasd-trace fit: %s: %s\n", argv[1], err);
		goto out;
	}
	printf("# %s%s: %u sequences, %u tokens each on average\n", argv[1],
	       h->synthetic ? " (synthetic)" : "", est.sequences, est.tokens);
	printf("# statistic    estimate     standard error\n");
	printf("acceptance     %-12.6g %.3g\n", est.acceptance, se.acceptance);
	printf("h_median       %-12.6g %.3g\n", est.h_median, se.h_median);
	printf("h_sigma        %-12.6g %.3g\n", est.h_sigma, se.h_sigma);
	printf("coupling       %-12.6g %.3g\n", est.coupling, se.coupling);
	printf("rho            %-12.6g %.3g\n", est.rho, se.rho);
	printf("cont_shift     %-12.6g %.3g\n", est.cont_shift, se.cont_shift);
	printf("top1_k         %-12.6g\n", est.top1_k);
	printf("# as options:\n--profile 7b-instruct --set acceptance=%.6g "
	       "--set h_median=%.6g --set h_sigma=%.6g --set coupling=%.6g "
	       "--set rho=%.6g --set cont_shift=%.6g --set top1_k=%.6g "
	       "--set sequences=%u --set tokens=%u --set prompt_min=%u "
	       "--set prompt_max=%u --set lookahead=%u --set sampled=%d\n",
	       est.acceptance, est.h_median, est.h_sigma, est.coupling, est.rho,
	       est.cont_shift, est.top1_k, est.sequences, est.tokens,
	       est.prompt_min, est.prompt_max, est.lookahead, est.sampled);
	status = 0;
out:
	wl_fit_free(&f);
	trace_reader_close(&rd);
	return status;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ahasd-trace COMMAND [options]\n"
	        "  info [--ops] FILE        header, provenance, models, "
	        "statistics\n"
	        "  validate FILE...         check every structural and range "
	        "rule\n"
	        "  synth [options] -o OUT   write a synthetic trace\n"
	        "  fit TRACE                a workload profile's statistics of "
	        "a trace\n"
	        "  --version                print the version\n"
	        "Run 'ahasd-trace COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ahasd-trace %s (trace format v%d)\n", AHASD_VERSION,
		       TRACE_FORMAT_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "info") == 0)
		return cmd_info(argc - 1, argv + 1);
	if (strcmp(argv[1], "validate") == 0)
		return cmd_validate(argc - 1, argv + 1);
	if (strcmp(argv[1], "synth") == 0)
		return cmd_synth(argc - 1, argv + 1);
	if (strcmp(argv[1], "fit") == 0)
		return cmd_fit(argc - 1, argv + 1);
	fprintf(stderr, "ahasd-trace: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
