/* drafter_banditspec.c - BanditSpec: the draft length as a multi-armed
 * bandit, solved with UCB (Hou et al., ICML 2025, arXiv 2505.15141).
 *
 * Each arm is a draft length (default 1,2,3,4). begin_batch picks the arm
 * for that batch; draft_token ends the batch at the arm's length (or the
 * host's cap if lower); batch_result rewards the arm that batch was drafted
 * with:
 *
 *     reward = committed / round_s   (tokens per second of round time;
 *                                      0 for a discarded batch)
 *
 * Choice: the first `warmup` rounds go round-robin over the arms in
 * ascending length. After that, an arm without any result yet is tried
 * first; otherwise the arm with the highest score wins, ties to the
 * shorter length, no randomness. Two scores (`index`):
 *
 *   code: score_i = mean_i + sqrt(c * ln t / N)
 *         the authors' ucb_length_spec_generate (github.com/sail-sg/
 *         BanditSpec @ 4e6dd86, generate_utils.py:180-191, 245-249):
 *         mean_i the arm's mean raw reward, t the index of this round
 *         (1-based), N the results of all arms. The exploration term is
 *         the same for every arm, so the choice is greedy on the mean.
 *   ucb1: score_i = mean_i / r_max + sqrt(c * ln t / n_i)
 *         this project's earlier hybrid: n_i the arm's results, t the
 *         results of all arms, r_max the largest single reward so far.
 *
 * Several batches can be in flight (task-level asynchronous execution), so
 * the arm of each open batch is remembered in a small ring keyed by
 * batch_id. With persist=none the statistics (and the warm-up) restart
 * with every sequence, as the code's restart with every generate call;
 * with persist=all they are kept for the whole run. begin_sequence always
 * forgets open batches.
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

#define BANDIT_MAX_ARMS       16u
#define BANDIT_RING           64u /* in-flight batches remembered */
#define BANDIT_ARM_COUNTERS   3u  /* per arm: pulls, results, mean reward */
#define BANDIT_FIXED_COUNTERS 9u

struct bandit_slot {
	uint64_t batch_id;
	uint32_t arm;
	int used;
};

enum bandit_index {
	BANDIT_INDEX_CODE = 0,
	BANDIT_INDEX_UCB1 = 1,
};

struct bandit_state {
	uint32_t arms[BANDIT_MAX_ARMS]; /* draft lengths, ascending */
	uint32_t n_arms;
	uint32_t warmup;
	double c;
	int index;       /* enum bandit_index */
	int persist_all; /* 1: statistics kept across seqs */

	/* the statistics the choice is made from (reset per sequence
	 * unless persist_all) */
	uint64_t n[BANDIT_MAX_ARMS]; /* results credited to the arm */
	double sum[BANDIT_MAX_ARMS]; /* sum of raw rewards */
	uint64_t t;                  /* results of all arms */
	double r_max;                /* largest reward seen */
	uint64_t rounds;             /* arms chosen so far */

	/* totals over the run, for the counters */
	uint64_t pulls[BANDIT_MAX_ARMS]; /* batches drafted with the arm */
	uint64_t run_n[BANDIT_MAX_ARMS];
	double run_sum[BANDIT_MAX_ARMS];
	uint64_t run_results;
	uint64_t run_rounds;
	double run_r_max;

	struct bandit_slot ring[BANDIT_RING];
	uint64_t cur_id;  /* batch being drafted */
	uint32_t cur_len; /* its length (arm, host-capped) */
	int cur_valid;

	uint64_t tokens;
	uint64_t unknown_results; /* results for no remembered batch */
	uint64_t ring_overwrites; /* open batch forgotten: ring full */
	uint64_t bad_results;     /* round_s <= 0: ignored */

	char names[BANDIT_MAX_ARMS * BANDIT_ARM_COUNTERS][32];
};

static int bandit_cmp_u32(const void *a, const void *b)
{
	const uint32_t x = *(const uint32_t *)a;
	const uint32_t y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Parse "1,2,3,4" (or "1:2:3:4", for command lines that split parameters
 * on commas): 1..BANDIT_MAX_ARMS distinct lengths in [1, DRAFTER_LEN_MAX],
 * stored ascending. */
static int bandit_parse_arms(struct bandit_state *s, const char *val, char *err,
                             size_t errlen)
{
	const char *p = val;
	uint32_t k = 0;

	if (val == NULL || *val == '\0')
		goto error;
	for (;;) {
		unsigned long long v = 0;
		const char *start = p;

		while (*p >= '0' && *p <= '9') {
			v = v * 10u + (unsigned)(*p - '0');
			if (v > DRAFTER_LEN_MAX)
				goto range;
			p++;
		}
		if (p == start || (*p != ',' && *p != ':' && *p != '\0'))
			goto error;
		if (v < 1)
			goto range;
		if (k == BANDIT_MAX_ARMS) {
			snprintf(err, errlen, "arms=%s has more than %u arms",
			         val, (unsigned)BANDIT_MAX_ARMS);
			return -EINVAL;
		}
		s->arms[k++] = (uint32_t)v;
		if (*p == '\0')
			break;
		p++;
	}
	qsort(s->arms, k, sizeof(s->arms[0]), bandit_cmp_u32);
	for (uint32_t i = 1; i < k; i++) {
		if (s->arms[i] == s->arms[i - 1]) {
			snprintf(err, errlen, "arms=%s repeats length %u", val,
			         (unsigned)s->arms[i]);
			return -EINVAL;
		}
	}
	s->n_arms = k;
	return 0;
range:
	snprintf(err, errlen, "arms=%s has a length outside [1, %u]", val,
	         (unsigned)DRAFTER_LEN_MAX);
	return -ERANGE;
error:
	snprintf(err, errlen, "arms=%s is not a list of lengths",
	         val != NULL ? val : "(null)");
	return -EINVAL;
}

static const char *const bandit_index_names[] = { "code", "ucb1" };
static const char *const bandit_persist_names[] = { "none", "all" };

static int bandit_param(void *st, const char *k, const char *v, char *err,
                        size_t errlen)
{
	struct bandit_state *s = st;

	if (strcmp(k, "arms") == 0)
		return bandit_parse_arms(s, v, err, errlen);
	if (strcmp(k, "warmup") == 0)
		return ahasd_parse_u32(k, v, 0, 1000000, &s->warmup, err,
		                       errlen);
	if (strcmp(k, "c") == 0)
		return ahasd_parse_double(k, v, 0.0, 1e9, &s->c, err, errlen);
	if (strcmp(k, "index") == 0)
		return drafter_param_choice(k, v, bandit_index_names, 2,
		                            &s->index, err, errlen);
	if (strcmp(k, "persist") == 0)
		return drafter_param_choice(k, v, bandit_persist_names, 2,
		                            &s->persist_all, err, errlen);
	return drafter_param_unknown(k, err, errlen);
}

static int bandit_ready(void *st, char *err, size_t errlen)
{
	struct bandit_state *s = st;

	if (s->n_arms == 0) /* arms never given: no arm to choose */
		return bandit_parse_arms(s, NULL, err, errlen);
	for (uint32_t a = 0; a < s->n_arms; a++) {
		snprintf(s->names[a * 3 + 0], sizeof(s->names[0]),
		         "arm%u_pulls", (unsigned)s->arms[a]);
		snprintf(s->names[a * 3 + 1], sizeof(s->names[0]),
		         "arm%u_results", (unsigned)s->arms[a]);
		snprintf(s->names[a * 3 + 2], sizeof(s->names[0]),
		         "arm%u_mean_reward", (unsigned)s->arms[a]);
	}
	return 0;
}

static int bandit_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	return drafter_create(st, sizeof(struct bandit_state), args,
	                      bandit_param, bandit_ready, err, errlen);
}

static void bandit_destroy(void *st)
{
	free(st);
}

/* The score of arm a (see the rule at the top); n[a] > 0. */
static double bandit_score(const struct bandit_state *s, uint32_t a)
{
	const double mean = s->sum[a] / (double)s->n[a];

	if (s->index == BANDIT_INDEX_CODE) {
		/* ucb_mean + sqrt(w * log(out_index) / ucb_calltime.sum()),
		 * out_index the 1-based index of this round */
		return mean +
		       sqrt(s->c * log((double)(s->rounds + 1)) / (double)s->t);
	}
	return (s->r_max > 0.0 ? mean / s->r_max : 0.0) +
	       sqrt(s->c * log((double)s->t) / (double)s->n[a]);
}

/* Pick the arm for the next batch (see the rule at the top). */
static uint32_t bandit_choose(struct bandit_state *s)
{
	uint32_t best = 0;
	double best_score = -(double)INFINITY;

	if (s->rounds < s->warmup) {
		best = (uint32_t)(s->rounds % s->n_arms);
		goto done;
	}
	for (uint32_t a = 0; a < s->n_arms; a++) {
		double score;

		if (s->n[a] == 0) { /* never rewarded: try it first */
			best = a;
			goto done;
		}
		score = bandit_score(s, a);
		if (score > best_score) {
			best_score = score;
			best = a;
		}
	}
done:
	s->rounds++;
	s->run_rounds++;
	s->pulls[best]++;
	return best;
}

static void bandit_remember(struct bandit_state *s, uint64_t batch_id,
                            uint32_t arm)
{
	struct bandit_slot *slot = &s->ring[batch_id % BANDIT_RING];

	if (slot->used && slot->batch_id != batch_id)
		s->ring_overwrites++;
	slot->batch_id = batch_id;
	slot->arm = arm;
	slot->used = 1;
}

static struct bandit_slot *bandit_lookup(struct bandit_state *s,
                                         uint64_t batch_id)
{
	struct bandit_slot *slot = &s->ring[batch_id % BANDIT_RING];

	return slot->used && slot->batch_id == batch_id ? slot : NULL;
}

static void bandit_begin_sequence(void *st, const struct ahasd_seq_info *seq)
{
	struct bandit_state *s = st;

	(void)seq;
	memset(s->ring, 0, sizeof(s->ring));
	s->cur_valid = 0;
	if (!s->persist_all) {
		memset(s->n, 0, sizeof(s->n));
		memset(s->sum, 0, sizeof(s->sum));
		s->t = 0;
		s->r_max = 0.0;
		s->rounds = 0;
	}
}

static void bandit_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	struct bandit_state *s = st;
	const uint32_t arm = bandit_choose(s);

	bandit_remember(s, batch_id, arm);
	s->cur_id = batch_id;
	s->cur_len = drafter_cap(s->arms[arm], max_len);
	s->cur_valid = 1;
}

static int bandit_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	struct bandit_state *s = st;

	if (!s->cur_valid || s->cur_id != tok->batch_id) {
		/* no begin_batch for this batch: choose now, uncapped */
		const struct bandit_slot *slot = bandit_lookup(s,
		                                               tok->batch_id);
		uint32_t arm;

		if (slot != NULL) {
			arm = slot->arm;
		} else {
			arm = bandit_choose(s);
			bandit_remember(s, tok->batch_id, arm);
		}
		s->cur_id = tok->batch_id;
		s->cur_len = s->arms[arm];
		s->cur_valid = 1;
	}
	s->tokens++;
	return tok->index + 1 >= s->cur_len;
}

static void bandit_batch_result(void *st, const struct ahasd_batch_result *res)
{
	struct bandit_state *s = st;
	struct bandit_slot *slot = bandit_lookup(s, res->batch_id);
	double reward = 0.0;
	uint32_t arm;

	if (slot == NULL) {
		s->unknown_results++;
		return;
	}
	arm = slot->arm;
	slot->used = 0;
	if (!res->discarded) {
		if (!(res->round_s > 0.0) || !isfinite(res->round_s)) {
			s->bad_results++;
			return;
		}
		reward = (double)res->committed / res->round_s;
	}
	s->n[arm]++;
	s->sum[arm] += reward;
	s->t++;
	if (reward > s->r_max)
		s->r_max = reward;
	s->run_n[arm]++;
	s->run_sum[arm] += reward;
	s->run_results++;
	if (reward > s->run_r_max)
		s->run_r_max = reward;
}

static int bandit_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct bandit_state *s = st;

	if (i < DRAFTER_LEN_COUNTERS)
		return drafter_counter(s->run_rounds, s->tokens, i, name,
		                       value);
	switch (i - DRAFTER_LEN_COUNTERS) {
	case 0:
		*name = "results";
		*value = (double)s->run_results;
		return 1;
	case 1: {
		/* arm with the highest mean reward so far, 0 if none */
		double best = -1.0;

		*name = "best_arm";
		*value = 0.0;
		for (uint32_t a = 0; a < s->n_arms; a++) {
			const double m = s->run_n[a]
			                         ? s->run_sum[a] /
			                                   (double)s->run_n[a]
			                         : -1.0;

			if (s->run_n[a] && m > best) {
				best = m;
				*value = (double)s->arms[a];
			}
		}
		return 1;
	}
	case 2:
		*name = "max_reward";
		*value = s->run_r_max;
		return 1;
	case 3:
		*name = "unknown_results";
		*value = (double)s->unknown_results;
		return 1;
	case 4:
		*name = "ring_overwrites";
		*value = (double)s->ring_overwrites;
		return 1;
	case 5:
		*name = "bad_results";
		*value = (double)s->bad_results;
		return 1;
	default: break;
	}
	i -= BANDIT_FIXED_COUNTERS;
	if (i >= s->n_arms * BANDIT_ARM_COUNTERS)
		return 0;
	*name = s->names[i];
	{
		const uint32_t a = i / BANDIT_ARM_COUNTERS;

		switch (i % BANDIT_ARM_COUNTERS) {
		case 0: *value = (double)s->pulls[a]; break;
		case 1: *value = (double)s->run_n[a]; break;
		default:
			*value = s->run_n[a]
			                 ? s->run_sum[a] / (double)s->run_n[a]
			                 : 0.0;
			break;
		}
	}
	return 1;
}

/* The defaults, with their sources (the host passes them to create()). */
static const struct ahasd_param bandit_params[] = {
	{ "arms", "1,2,3,4",
	  "draft lengths to choose from, separated by ',' or ':' (up to 16, "
	  "distinct)" },
	/* generate_utils.py:187-188: out_index < 4 * 2 */
	{ "warmup", "7", "batches drafted round-robin over the arms first" },
	/* generate_utils.py:182 */
	{ "c", "6", "UCB exploration weight (sqrt(c * ln t / N)), >= 0" },
	{ "index", "code",
	  "score: code (mean + sqrt(c ln t / N), the authors' code) or ucb1 "
	  "(mean / r_max + sqrt(c ln t / n_i))" },
	{ "persist", "none",
	  "statistics: none (restart every sequence, as the code per call) or "
	  "all (kept for the run)" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_drafter_hooks bandit_hooks = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = bandit_begin_sequence,
	.begin_batch = bandit_begin_batch,
	.draft_token = bandit_draft_token,
	.batch_result = bandit_batch_result,
};

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_DRAFTER,
	.name = "banditspec",
	.version = "1.1",
	.description = "BanditSpec: UCB over draft lengths, reward = committed "
	               "tokens per second of round time",
	.params = bandit_params,
	.create = bandit_create,
	.destroy = bandit_destroy,
	.counter = bandit_counter,
	.policy = NULL,
	.drafter = &bandit_hooks,
};
