/* stats.c - see stats.h. */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const stats_metric_name[STATS_N_METRICS] = {
	"tokens_per_s",
	"tokens_per_j",
	"acceptance_rate",
	"mean_draft_len",
};

void stats_seq_from(const struct replay_seq_result *r, struct stats_seq *s)
{
	s->num[STATS_TOKENS_PER_S] = r->committed;
	s->den[STATS_TOKENS_PER_S] = r->time_s;
	s->num[STATS_TOKENS_PER_J] = r->committed;
	s->den[STATS_TOKENS_PER_J] = r->energy_j;
	s->num[STATS_ACCEPTANCE_RATE] = (double)r->accepted;
	s->den[STATS_ACCEPTANCE_RATE] = (double)r->drafted;
	s->num[STATS_MEAN_DRAFT_LEN] = (double)r->batch_tokens;
	s->den[STATS_MEAN_DRAFT_LEN] = (double)r->batches;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* As the metrics table: 0 over 0 is 0; an unknown part (NAN, a column
 * an older file lacks) leaves the ratio unknown. */
static double ratio(double num, double den)
{
	if (isnan(num) || isnan(den))
		return NAN;
	return den > 0.0 ? num / den : 0.0;
}

/* Rearrange x[0..n-1] so that x[k] is the k-th smallest, the ones
 * before it no larger and the ones after no smaller (quickselect). */
static void select_kth(double *x, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		const double pivot = x[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;

		while (i <= j) {
			while (x[i] < pivot)
				i++;
			while (x[j] > pivot)
				j--;
			if (i <= j) {
				const double t = x[i];

				x[i++] = x[j];
				x[j] = t;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
}

/* The p-quantile of x[0..n-1] (reordered), interpolated between order
 * statistics (type 7). */
static double quantile(double *x, size_t n, double p)
{
	const double h = (double)(n - 1) * p;
	const size_t i = (size_t)h;
	double next = 0;

	select_kth(x, n, i);
	if (i + 1 >= n)
		return x[i];
	/* the next order statistic: the smallest of those after x[i] */
	next = x[i + 1];
	for (size_t j = i + 2; j < n; j++)
		if (x[j] < next)
			next = x[j];
	return x[i] + (h - (double)i) * (next - x[i]);
}

/* The bootstrap for one run (b NULL) or a pair: dist[m * B + r] is metric
 * m in resample r, NAN where undefined. */
static void resample(const struct stats_seq *a, const struct stats_seq *b,
                     size_t n, double *dist)
{
	uint64_t state = STATS_SEED;

	for (size_t r = 0; r < STATS_RESAMPLES; r++) {
		double na[STATS_N_METRICS] = { 0 }, da[STATS_N_METRICS] = { 0 };
		double nb[STATS_N_METRICS] = { 0 }, db[STATS_N_METRICS] = { 0 };

		for (size_t j = 0; j < n; j++) {
			/* the top 32 bits scaled to [0, n): a multiply, not a
			 * division (n < 2^32, bias below n / 2^32) */
			const size_t k = (size_t)(((splitmix64(&state) >> 32) *
			                           (uint64_t)n) >>
			                          32);

			for (int m = 0; m < STATS_N_METRICS; m++) {
				na[m] += a[k].num[m];
				da[m] += a[k].den[m];
				if (b) {
					nb[m] += b[k].num[m];
					db[m] += b[k].den[m];
				}
			}
		}
		for (int m = 0; m < STATS_N_METRICS; m++) {
			const double va = ratio(na[m], da[m]);

			if (!b) {
				dist[(size_t)m * STATS_RESAMPLES + r] = va;
			} else {
				const double vb = ratio(nb[m], db[m]);

				dist[(size_t)m * STATS_RESAMPLES + r] =
				        vb > 0 ? va / vb : NAN;
			}
		}
	}
}

/* lo and hi of each metric from its resamples (NAN if any is). */
static void percentiles(double *dist, struct stats_interval *out)
{
	const double tail = (1.0 - STATS_LEVEL) / 2.0;

	for (int m = 0; m < STATS_N_METRICS; m++) {
		double *x = dist + (size_t)m * STATS_RESAMPLES;
		int defined = isfinite(out[m].value);

		for (size_t r = 0; r < STATS_RESAMPLES && defined; r++)
			defined = isfinite(x[r]);
		if (!defined) {
			out[m].lo = out[m].hi = NAN;
			continue;
		}
		out[m].lo = quantile(x, STATS_RESAMPLES, tail);
		out[m].hi = quantile(x, STATS_RESAMPLES, 1.0 - tail);
	}
}

/* The estimate over all n sequences. */
static void estimate(const struct stats_seq *a, const struct stats_seq *b,
                     size_t n, struct stats_interval *out)
{
	for (int m = 0; m < STATS_N_METRICS; m++) {
		double na = 0, da = 0, nb = 0, db = 0;

		for (size_t j = 0; j < n; j++) {
			na += a[j].num[m];
			da += a[j].den[m];
			if (b) {
				nb += b[j].num[m];
				db += b[j].den[m];
			}
		}
		if (!b) {
			out[m].value = ratio(na, da);
		} else {
			const double vb = ratio(nb, db);

			out[m].value = vb > 0 ? ratio(na, da) / vb : NAN;
		}
	}
}

static int bootstrap(const struct stats_seq *a, const struct stats_seq *b,
                     size_t n, struct stats_interval *out)
{
	double *dist;

	if (n == 0) {
		for (int m = 0; m < STATS_N_METRICS; m++)
			out[m] = (struct stats_interval){ NAN, NAN, NAN };
		return 0;
	}
	dist = malloc((size_t)STATS_N_METRICS * STATS_RESAMPLES * sizeof *dist);
	if (!dist)
		return -ENOMEM;
	estimate(a, b, n, out);
	resample(a, b, n, dist);
	percentiles(dist, out);
	free(dist);
	return 0;
}

int stats_intervals(const struct stats_seq *s, size_t n,
                    struct stats_interval out[STATS_N_METRICS])
{
	return bootstrap(s, NULL, n, out);
}

int stats_paired(const struct stats_seq *a, const struct stats_seq *b, size_t n,
                 struct stats_interval out[STATS_N_METRICS])
{
	return bootstrap(a, b, n, out);
}

int stats_ratio_differs(const struct stats_interval *iv)
{
	if (!isfinite(iv->lo) || !isfinite(iv->hi))
		return -1;
	return iv->lo > 1.0 || iv->hi < 1.0;
}
