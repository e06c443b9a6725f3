/* adaedl_semantics.c - an offline check behind policies/DRAFTERS.md (not a
 * test, not installed): AdaEDL's Algorithm 1 (section 4.4 values, L = 16)
 * replayed on a greedy trace under the engine's synchronous semantics, with
 * the token whose bound fails either kept in its batch (what the plugin ABI
 * allows, and what drafter_adaedl.c does) or not drafted (the paper's
 * Appendix B; the first token of a round is always drafted, as every batch
 * has at least one token).
 *
 *     adaedl-semantics TRACE keep|exclude none|lambda LAMBDA0 [TARGET]
 *
 * The chain follows the engine (replay/engine.c): on the target's path
 * while tokens are accepted, then the continuation entropies of the
 * rejected position; a round commits its leading accepted run plus one;
 * the host caps a round at min(32, tokens left). none restarts lambda at
 * LAMBDA0 with every sequence, lambda carries it over; AR restarts at 0
 * either way. In keep mode the numbers equal the engine's with the adaedl
 * plugin under sync (same batches, mean and spread).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define SEM_L         16u /* max_len: the hold branch's L */
#define SEM_QUEUE_CAP 32u /* the host's default --queue-capacity */

struct sem_cfg {
	int exclude;
	int persist_lambda;
	double lambda0;
	double target;
};

struct sem_totals {
	unsigned long long batches;
	unsigned long long drafted;
	double sum_sq;
	double lambda;
};

/* One round from committed position c: returns the tokens drafted and
 * their leading accepted run in *acc. */
static unsigned sem_round(const struct trace_header *h,
                          const struct trace_seq *s, unsigned c, double lambda,
                          int exclude, unsigned *acc)
{
	const double gamma = 0.2;
	unsigned cap = SEM_L, n = 0, rej_pos = 0;
	int rejected = 0;

	if (s->n - c < cap)
		cap = s->n - c;
	if (cap > SEM_QUEUE_CAP)
		cap = SEM_QUEUE_CAP;
	*acc = 0;
	for (;;) {
		const unsigned p = c + n;
		double e = rejected ? trace_seq_cont_entropy(s, h->lookahead,
		                                             rej_pos,
		                                             p - rej_pos)
		                    : s->entropy[p];
		int fails;

		if (!(e > 0.0))
			e = 0.0;
		fails = 1.0 - sqrt(gamma * e) < lambda;
		if (exclude && fails && n >= 1)
			break; /* not drafted (App. B) */
		n++;
		if (!rejected) {
			if (s->accept[p] >= 0.5f)
				(*acc)++;
			else {
				rejected = 1;
				rej_pos = p;
			}
		}
		if (n >= cap || (!exclude && fails))
			break; /* kept, then the batch ends */
	}
	return n;
}

static int sem_run(const char *path, const struct sem_cfg *cfg,
                   struct sem_totals *t)
{
	const double beta1 = 0.5, beta2 = 0.9, eps = 0.01;
	struct trace_reader *r = NULL;
	struct trace_seq s;
	char err[256];
	int rc;

	memset(&s, 0, sizeof(s));
	rc = trace_reader_open(&r, path, err, sizeof(err));
	if (rc != 0)
		goto error;
	if (trace_reader_header(r)->sampled) {
		snprintf(err, sizeof(err), "%s: a greedy trace is needed",
		         path);
		rc = -1;
		goto error;
	}
	t->lambda = cfg->lambda0;
	while ((rc = trace_reader_next(r, &s, err, sizeof(err))) > 0) {
		double ar = 0.0;
		unsigned c = 0;

		if (!cfg->persist_lambda)
			t->lambda = cfg->lambda0;
		while (c < s.n) {
			unsigned acc, commit;
			const unsigned n = sem_round(trace_reader_header(r), &s,
			                             c, t->lambda, cfg->exclude,
			                             &acc);
			double next;

			t->batches++;
			t->drafted += n;
			t->sum_sq += (double)n * n;
			commit = acc + 1 < s.n - c ? acc + 1 : s.n - c;
			c += commit;
			/* Algorithm 1, lines 7-16 */
			ar = beta1 * ar + (1.0 - beta1) * ((double)acc / n);
			if (ar < cfg->target)
				next = t->lambda + eps;
			else if (acc != SEM_L)
				next = t->lambda - eps;
			else
				next = t->lambda;
			t->lambda = beta2 * t->lambda + (1.0 - beta2) * next;
		}
	}
	if (rc < 0)
		goto error;
	trace_reader_close(&r);
	return 0;
error:
	fprintf(stderr, "adaedl-semantics: %s\n", err);
	trace_reader_close(&r);
	return -1;
}

int main(int argc, char **argv)
{
	struct sem_cfg cfg = { 0, 0, 0.7, 0.9 };
	struct sem_totals t = { 0, 0, 0.0, 0.0 };
	double mean;

	if (argc < 5 || argc > 6 ||
	    (strcmp(argv[2], "keep") != 0 && strcmp(argv[2], "exclude") != 0) ||
	    (strcmp(argv[3], "none") != 0 && strcmp(argv[3], "lambda") != 0)) {
		fprintf(stderr, "usage: adaedl-semantics TRACE keep|exclude "
		                "none|lambda LAMBDA0 [TARGET]\n");
		return 2;
	}
	cfg.exclude = strcmp(argv[2], "exclude") == 0;
	cfg.persist_lambda = strcmp(argv[3], "lambda") == 0;
	cfg.lambda0 = strtod(argv[4], NULL);
	if (argc == 6)
		cfg.target = strtod(argv[5], NULL);
	if (sem_run(argv[1], &cfg, &t) != 0 || t.batches == 0)
		return 1;
	mean = (double)t.drafted / (double)t.batches;
	printf("%s persist=%s lambda0=%g target=%g: %llu batches, mean %.2f, "
	       "std %.2f, final lambda %.3f\n",
	       argv[2], argv[3], cfg.lambda0, cfg.target, t.batches, mean,
	       sqrt(t.sum_sq / (double)t.batches - mean * mean), t.lambda);
	return 0;
}
