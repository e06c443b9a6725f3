/* drafter_adaedl.c - AdaEDL: early draft stopping on an entropy-based lower
 * bound of the token acceptance probability, with an adaptive threshold
 * (Agrawal, Jeon and Lee, PMLR 262:355-369, 2024; section 3, Algorithm 1,
 * Appendix B; defaults from section 4.4).
 *
 * Stopping rule, per drafted token with entropy H (nats):
 *
 *     stop after the token  iff  1 - sqrt(gamma * H) < lambda
 *
 * (batch length kept in [min_len, max_len] and within the host's cap). The
 * paper does not draft the token whose bound fails (Appendix B); the plugin
 * ABI can only end a batch after a token, so that token stays in the batch
 * (as in Draft & Verify's code, which AdaEDL's update comes from).
 *
 * Threshold update, Algorithm 1, after each verified (non-discarded) batch
 * with AR_i = accepted / drafted and L = max_len:
 *
 *     AR      <- beta1 * AR + (1 - beta1) * AR_i      (line 8)
 *     lambda' <- lambda + eps   if AR < target        (lines 9-10)
 *                lambda - eps   else if n != L        (lines 11-12)
 *                lambda         otherwise (hold)      (line 14)
 *     lambda  <- beta2 * lambda + (1 - beta2) * lambda'   (line 16)
 *
 * so lambda moves by (1 - beta2) * eps = 0.001 per batch. n is the batch's
 * accepted count as printed on line 11 (hold=accepted), or its drafted
 * count as in the comment on that line and in Draft & Verify's code
 * (hold=drafted). lambda is not clamped (Algorithm 1 has no clamp); above
 * 1 every batch stops at its first token, below 0 only max_len stops one.
 *
 * The paper leaves open lambda's initial value (lambda0), AR's initial
 * value (ar0) and whether either carries over from one generation to the
 * next (persist=none: both restart at every sequence; lambda: lambda
 * carries over and AR restarts, as Draft & Verify's code and notebooks do;
 * all: both carry over for the whole run). They are parameters.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"
#include "drafter_common.h"

/* what carries over from one sequence to the next */
enum adaedl_persist {
	ADAEDL_PERSIST_NONE = 0,   /* lambda and AR restart */
	ADAEDL_PERSIST_LAMBDA = 1, /* lambda carries over, AR restarts */
	ADAEDL_PERSIST_ALL = 2,    /* both carry over */
};

/* which count the hold branch (Algorithm 1, line 11) compares with L */
enum adaedl_hold {
	ADAEDL_HOLD_ACCEPTED = 0, /* n_acc == L, as printed */
	ADAEDL_HOLD_DRAFTED = 1,  /* n_drafted == L, as Draft & Verify */
};

struct adaedl_state {
	double gamma;
	double lambda0;
	double target;
	double beta1;
	double beta2;
	double eps;
	double ar0;
	struct drafter_len len;
	int persist; /* enum adaedl_persist */
	int hold;    /* enum adaedl_hold */

	double lambda;  /* current threshold */
	double margin;  /* 1 - lambda, kept with lambda */
	double stop_sq; /* margin^2 (if margin >= 0) */
	double ar;      /* EMA of the per-batch acceptance rate */

	uint64_t rule_stops;
	uint64_t updates;   /* batch results used for adaptation */
	uint64_t discarded; /* discarded batch results (ignored) */
	uint64_t raises;    /* updates that raised lambda */
	uint64_t lowers;    /* updates that lowered lambda */
	uint64_t holds;     /* updates that held lambda */
	uint64_t sequences;
	double lambda_min;
	double lambda_max;
	double lambda_sum; /* over batches begun, for the mean */
};

static void adaedl_set_lambda(struct adaedl_state *s, double lambda)
{
	s->lambda = lambda;
	s->margin = 1.0 - lambda;
	s->stop_sq = s->margin * s->margin;
	if (lambda < s->lambda_min)
		s->lambda_min = lambda;
	if (lambda > s->lambda_max)
		s->lambda_max = lambda;
}

static const char *const adaedl_persist_names[] = { "none", "lambda", "all" };
static const char *const adaedl_hold_names[] = { "accepted", "drafted" };

static int adaedl_param(void *st, const char *k, const char *v, char *err,
                        size_t errlen)
{
	struct adaedl_state *s = st;
	double *unit = NULL; /* the parameters in [0, 1] */

	if (strcmp(k, "gamma") == 0)
		return ahasd_parse_double(k, v, 1e-9, 1e9, &s->gamma, err,
		                          errlen);
	if (strcmp(k, "persist") == 0)
		return drafter_param_choice(k, v, adaedl_persist_names, 3,
		                            &s->persist, err, errlen);
	if (strcmp(k, "hold") == 0)
		return drafter_param_choice(k, v, adaedl_hold_names, 2,
		                            &s->hold, err, errlen);
	if (strcmp(k, "lambda0") == 0)
		unit = &s->lambda0;
	else if (strcmp(k, "target") == 0)
		unit = &s->target;
	else if (strcmp(k, "beta1") == 0)
		unit = &s->beta1;
	else if (strcmp(k, "beta2") == 0)
		unit = &s->beta2;
	else if (strcmp(k, "eps") == 0)
		unit = &s->eps;
	else if (strcmp(k, "ar0") == 0)
		unit = &s->ar0;
	if (unit != NULL)
		return ahasd_parse_double(k, v, 0.0, 1.0, unit, err, errlen);
	return drafter_len_param(&s->len, k, v, err, errlen);
}

static int adaedl_ready(void *st, char *err, size_t errlen)
{
	struct adaedl_state *s = st;

	s->lambda_min = s->lambda0;
	s->lambda_max = s->lambda0;
	adaedl_set_lambda(s, s->lambda0);
	s->ar = s->ar0;
	return drafter_len_check(&s->len, err, errlen);
}

static int adaedl_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	return drafter_create(st, sizeof(struct adaedl_state), args,
	                      adaedl_param, adaedl_ready, err, errlen);
}

static void adaedl_destroy(void *st)
{
	free(st);
}

static void adaedl_begin_sequence(void *st, const struct ahasd_seq_info *seq)
{
	struct adaedl_state *s = st;

	(void)seq;
	s->sequences++;
	if (s->persist == ADAEDL_PERSIST_NONE)
		adaedl_set_lambda(s, s->lambda0);
	if (s->persist != ADAEDL_PERSIST_ALL)
		s->ar = s->ar0;
}

static void adaedl_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct adaedl_state *s = st;

	(void)batch_id;
	drafter_len_begin(&s->len, max_len);
	s->lambda_sum += s->lambda;
}

static int adaedl_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct adaedl_state *s = st;
	const enum drafter_step step = drafter_len_token(&s->len,
	                                                 tok->index + 1);
	double h = (double)tok->entropy;

	if (step != DRAFTER_RULE)
		return step == DRAFTER_STOP;
	if (!(h > 0.0)) /* negative rounding noise or NaN: fully confident */
		h = 0.0;
	/* 1 - sqrt(gamma H) < lambda  <=>  sqrt(gamma H) > 1 - lambda: always
	 * when lambda > 1, else gamma H > (1 - lambda)^2 (both sides >= 0),
	 * with no square root per token */
	if (s->margin < 0.0 || s->gamma * h > s->stop_sq) {
		s->rule_stops++;
		return 1;
	}
	return 0;
}

static void adaedl_batch_result(void *st, const struct ahasd_batch_result *res)
{
	struct adaedl_state *s = st;
	double a, next;
	uint32_t n;

	if (res->discarded) {
		/* never verified: says nothing about the acceptance rate */
		s->discarded++;
		return;
	}
	if (res->drafted == 0)
		return;
	a = (double)res->accepted / (double)res->drafted;
	if (a > 1.0)
		a = 1.0;
	s->ar = s->beta1 * s->ar + (1.0 - s->beta1) * a;
	n = s->hold == ADAEDL_HOLD_DRAFTED ? res->drafted : res->accepted;
	if (s->ar < s->target) {
		next = s->lambda + s->eps;
		s->raises++;
	} else if (n != s->len.max_len) {
		next = s->lambda - s->eps;
		s->lowers++;
	} else {
		next = s->lambda;
		s->holds++;
	}
	adaedl_set_lambda(s, s->beta2 * s->lambda + (1.0 - s->beta2) * next);
	s->updates++;
}

static int adaedl_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct adaedl_state *s = st;

	if (i < DRAFTER_LEN_COUNTERS)
		return drafter_counter(s->len.batches, s->len.tokens, i, name,
		                       value);
	switch (i - DRAFTER_LEN_COUNTERS) {
	case 0:
		*name = "rule_stops";
		*value = (double)s->rule_stops;
		return 1;
	case 1:
		*name = "cap_stops";
		*value = (double)s->len.cap_stops;
		return 1;
	case 2:
		*name = "lambda";
		*value = s->lambda;
		return 1;
	case 3:
		*name = "lambda_min";
		*value = s->lambda_min;
		return 1;
	case 4:
		*name = "lambda_max";
		*value = s->lambda_max;
		return 1;
	case 5:
		*name = "acceptance_estimate";
		*value = s->ar;
		return 1;
	case 6:
		*name = "updates";
		*value = (double)s->updates;
		return 1;
	case 7:
		*name = "lambda_raises";
		*value = (double)s->raises;
		return 1;
	case 8:
		*name = "lambda_lowers";
		*value = (double)s->lowers;
		return 1;
	case 9:
		*name = "discarded_results";
		*value = (double)s->discarded;
		return 1;
	case 10:
		*name = "lambda_holds";
		*value = (double)s->holds;
		return 1;
	case 11:
		*name = "lambda_mean"; /* over batches, at their start */
		*value = s->len.batches ? s->lambda_sum / (double)s->len.batches
		                        : s->lambda;
		return 1;
	case 12:
		*name = "sequences";
		*value = (double)s->sequences;
		return 1;
	default: return 0;
	}
}

/* The defaults, with their sources (the host passes them to create()). */
static const struct ahasd_param adaedl_params[] = {
	/* section 4.4 */
	{ "gamma", "0.2",
	  "entropy scale in the bound 1 - sqrt(gamma * H), > 0" },
	/* open: Fig. 6 sweeps 0.3 to 0.9 */
	{ "lambda0", "0.7",
	  "initial stopping threshold lambda (not given by the paper), "
	  "in [0, 1]" },
	/* alpha, section 4.4 */
	{ "target", "0.9", "target acceptance rate alpha, in [0, 1]" },
	/* section 4.4, Algorithm 1 line 8 */
	{ "beta1", "0.5", "EMA factor of the acceptance rate AR, in [0, 1]" },
	/* section 4.4, Algorithm 1 line 16 */
	{ "beta2", "0.9",
	  "EMA factor of lambda: it moves (1 - beta2) * eps "
	  "per batch, in [0, 1]" },
	/* section 4.4 */
	{ "eps", "0.01", "step of lambda' = lambda +- eps, in [0, 1]" },
	/* open: Draft & Verify starts at 0 */
	{ "ar0", "0", "initial AR (not given by the paper), in [0, 1]" },
	{ "persist", "none",
	  "what carries over between sequences: none, lambda (AR restarts) "
	  "or all" },
	{ "hold", "accepted",
	  "hold lambda when AR >= target and this count of the batch equals "
	  "max_len: accepted (Algorithm 1 as printed) or drafted" },
	{ "min_len", "1", "never stop before this many tokens (>= 1)" },
	/* the largest of Table 1's 3, 7, 16 */
	{ "max_len", "16",
	  "always stop at this many tokens (>= min_len); L of the hold "
	  "branch" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks adaedl_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = adaedl_begin_sequence,
	.begin_batch = adaedl_begin_batch,
	.draft_token = adaedl_draft_token,
	.batch_result = adaedl_batch_result,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "adaedl",
	.version = "1.1",
	.description = "AdaEDL: stop when the acceptance lower bound "
	               "1 - sqrt(gamma * H) falls below an adaptive lambda",
	.params = adaedl_params,
	.create = adaedl_create,
	.destroy = adaedl_destroy,
	.counter = adaedl_counter,
	.policy = NULL,
	.drafter = &adaedl_hooks,
	/* its stopping rule reads every draft's entropy (or top-1) */
	.needs = AHASD_NEEDS_ENTROPY,
};
