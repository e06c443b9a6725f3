/* workload.c - workload profiles: generation and fitting (workload.h,
 * traces/WORKLOADS.md). */
#include "workload.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The shipped profiles (sources in traces/WORKLOADS.md)               */

static const struct wl_profile profiles[] = {
	/* A 7B-class draft for a 13B-class target of the same family on
	 * instruction prompts, greedy: acceptance 0.8 (Leviathan et al. 2023,
	 * Table 3: drafts a few times smaller than the target accept 0.75 to
	 * 0.82 greedy); mean entropy 0.25 nats at accepted and 1.30 at
	 * rejected positions (SVIP, Table 1); ln H spread 1.5 (assumed: "mostly
	 * near zero with a long tail"), which with the first two fixes the
	 * median (0.15 nats) and the coupling (1.0: P(accept) ~ 1 / (1 + H));
	 * bursts rho 0.5, continuation shift +1.0, top1_k 1 (assumed); the
	 * paper's 1024 generated tokens; prompts 16 to 96 tokens (assumed). */
	{ "7b-instruct", 0.80, 0.15, 1.5, 1.0, 0.5, 1.0, 1.0, 32, 1024, 16, 96,
	  16, 0, 0 },
	/* The same pair sampled at T = 1 (a_p the probability). */
	{ "7b-instruct-sampled", 0.80, 0.15, 1.5, 1.0, 0.5, 1.0, 1.0, 32, 1024,
	  16, 96, 16, 1, 0 },
};
#define N_PROFILES (sizeof profiles / sizeof profiles[0])

const struct wl_profile *wl_profile_at(size_t i)
{
	return i < N_PROFILES ? &profiles[i] : NULL;
}

int wl_profile_find(const char *name, struct wl_profile *out, char *err,
                    size_t errlen)
{
	for (size_t i = 0; i < N_PROFILES; i++) {
		if (!strcmp(profiles[i].name, name)) {
			*out = profiles[i];
			return wl_profile_finish(out, err, errlen);
		}
	}
	char list[256] = "";
	size_t pos = 0;
	for (size_t i = 0; i < N_PROFILES && pos < sizeof list; i++)
		pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s",
		                        i ? ", " : "", profiles[i].name);
	util_set_err(err, errlen, "unknown workload profile '%s' (known: %s)",
	             name, list);
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */

struct wl_key {
	const char *name;
	size_t off;
	int is_uint;
	double lo, hi;
	const char *what;
};

#define WD(n, lo, hi, w)                                         \
	{                                                        \
#n, offsetof(struct wl_profile, n), 0, lo, hi, w \
	}
#define WU(n, lo, hi, w)                                         \
	{                                                        \
#n, offsetof(struct wl_profile, n), 1, lo, hi, w \
	}
static const struct wl_key keys[] = {
	WD(acceptance, 1e-6, 1 - 1e-6, "mean acceptance of a draft token"),
	WD(h_median, 1e-9, 20, "median draft entropy, nats"),
	WD(h_sigma, 0, 10, "spread of ln H"),
	WD(coupling, 0, 50, "how strongly entropy predicts rejection"),
	WD(rho, 0, 0.999, "lag-1 correlation of ln H: bursts"),
	WD(cont_shift, -10, 10, "ln H shift off the true path"),
	WD(top1_k, 0, 100, "top-1 probability exp(-k H)"),
	WU(sequences, 1, 1u << 20, "sequences"),
	WU(tokens, 1, 1u << 20, "generated tokens per sequence"),
	WU(prompt_min, 0, 1u << 20, "shortest prompt"),
	WU(prompt_max, 0, 1u << 20, "longest prompt"),
	WU(lookahead, 1, 1024, "continuation entropies per rejection"),
	WU(sampled, 0, 1, "1: a_p is the acceptance probability"),
};
#undef WD
#undef WU

int wl_profile_set(struct wl_profile *p, const char *key, const char *value,
                   char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const struct wl_key *k = &keys[i];
		if (strcmp(k->name, key))
			continue;
		char *end;
		errno = 0;
		const double v = strtod(value, &end);
		if (end == value || *end || errno || !isfinite(v) ||
		    v < k->lo || v > k->hi || (k->is_uint && v != floor(v))) {
			util_set_err(err, errlen,
			             "workload %s = '%s': expected %s "
			             "in [%.9g, %.9g]",
			             key, value,
			             k->is_uint ? "an integer" : "a number",
			             k->lo, k->hi);
			return -EINVAL;
		}
		if (k->is_uint)
			*(uint32_t *)((char *)p + k->off) = (uint32_t)v;
		else if (!strcmp(key, "sampled"))
			p->sampled = (int)v;
		else
			*(double *)((char *)p + k->off) = v;
		return 0;
	}
	util_set_err(err, errlen,
	             "unknown workload statistic '%s' (acceptance, "
	             "h_median, h_sigma, coupling, rho, cont_shift, top1_k, "
	             "sequences, tokens, prompt_min, prompt_max, lookahead, "
	             "sampled)",
	             key);
	return -EINVAL;
}

void wl_profile_describe(const struct wl_profile *p, char *buf, size_t len)
{
	snprintf(buf, len,
	         "acceptance=%.9g h_median=%.9g h_sigma=%.9g "
	         "coupling=%.9g rho=%.9g cont_shift=%.9g top1_k=%.9g "
	         "sequences=%u tokens=%u prompt_min=%u prompt_max=%u "
	         "lookahead=%u sampled=%d",
	         p->acceptance, p->h_median, p->h_sigma, p->coupling, p->rho,
	         p->cont_shift, p->top1_k, p->sequences, p->tokens,
	         p->prompt_min, p->prompt_max, p->lookahead, p->sampled);
}

static double logistic(double x)
{
	return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* E[P(accept)] for intercept a0, ln H ~ N(mu, s^2): trapezoid over z in
 * [-8, 8] (the normal's mass outside is below 1e-15). */
static double mean_accept(const struct wl_profile *p, double a0)
{
	const int n = 1600;
	const double lo = -8.0, h = 16.0 / n, mu = log(p->h_median);
	double sum = 0, wsum = 0;
	for (int i = 0; i <= n; i++) {
		const double z = lo + i * h;
		const double w = exp(-0.5 * z * z) *
		                 (i == 0 || i == n ? 0.5 : 1);
		sum += w * logistic(a0 - p->coupling * (mu + p->h_sigma * z));
		wsum += w;
	}
	return sum / wsum;
}

int wl_profile_finish(struct wl_profile *p, char *err, size_t errlen)
{
	if (p->prompt_min > p->prompt_max) {
		util_set_err(err, errlen,
		             "workload: prompt_min %u > prompt_max "
		             "%u",
		             p->prompt_min, p->prompt_max);
		return -EINVAL;
	}
	/* mean_accept is increasing in a0: bisect */
	double lo = -80, hi = 80;
	for (int i = 0; i < 200 && hi - lo > 1e-13; i++) {
		const double mid = 0.5 * (lo + hi);
		if (mean_accept(p, mid) < p->acceptance)
			lo = mid;
		else
			hi = mid;
	}
	p->a0 = 0.5 * (lo + hi);
	if (fabs(mean_accept(p, p->a0) - p->acceptance) > 1e-6) {
		util_set_err(err, errlen,
		             "workload: acceptance %.9g is out of "
		             "reach with coupling %.9g",
		             p->acceptance, p->coupling);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Generation                                                          */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(struct rng *r)
{
	const uint64_t out = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;
	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return out;
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

/* standard normal (Box-Muller; one value per call, for reproducibility) */
static double rng_normal(struct rng *r)
{
	const double u = rng_unit(r), v = rng_unit(r);
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ln(vocab) bounds a distribution's entropy; 32000 tokens: 10.4 nats */
#define WL_H_MAX 10.37

static float entropy_of(double ln_h)
{
	const double h = exp(ln_h);
	return (float)(h > WL_H_MAX ? WL_H_MAX : h);
}

void wl_seq_free(struct trace_seq *s)
{
	free(s->entropy);
	free(s->top1);
	free(s->accept);
	free(s->cont_pos);
	free(s->cont_entropy);
	free(s->cont_index);
	memset(s, 0, sizeof *s);
}

int wl_generate(const struct wl_profile *p, uint64_t seed, uint32_t id,
                struct trace_seq *s)
{
	const uint32_t n = p->tokens, K = p->lookahead;
	const double mu = log(p->h_median), sd = p->h_sigma;
	const double innov = sqrt(1.0 - p->rho * p->rho);
	struct rng r;

	memset(s, 0, sizeof *s);
	s->entropy = malloc(n * sizeof *s->entropy);
	s->top1 = malloc(n * sizeof *s->top1);
	s->accept = malloc(n * sizeof *s->accept);
	s->cont_pos = malloc(n * sizeof *s->cont_pos);
	s->cont_entropy = malloc((size_t)n * K * sizeof *s->cont_entropy);
	s->cont_index = malloc(n * sizeof *s->cont_index);
	if (!s->entropy || !s->top1 || !s->accept || !s->cont_pos ||
	    !s->cont_entropy || !s->cont_index) {
		wl_seq_free(s);
		return -ENOMEM;
	}
	rng_seed(&r, seed, (uint64_t)id + 1);
	s->id = id;
	s->n = n;
	s->prompt_len = p->prompt_min +
	                (uint32_t)(rng_unit(&r) *
	                           (double)(p->prompt_max - p->prompt_min + 1));
	if (s->prompt_len > p->prompt_max)
		s->prompt_len = p->prompt_max;
	double z = rng_normal(&r);
	for (uint32_t t = 0; t < n; t++) {
		if (t)
			z = p->rho * z + innov * rng_normal(&r);
		const double ln_h = mu + sd * z;
		const float h = entropy_of(ln_h);
		const double pa = logistic(p->a0 - p->coupling * log(h));
		s->entropy[t] = h;
		s->top1[t] = (float)exp(-p->top1_k * h);
		s->accept[t] = p->sampled ? (float)pa
		                          : (rng_unit(&r) < pa ? 1.0f : 0.0f);
		s->cont_index[t] = -1;
		if (s->accept[t] >= 1.0f)
			continue;
		/* off the true path: the draft follows its own wrong token,
		 * its entropies shifted and correlated as on the path (a
		 * chain of its own: what it sees no longer tracks the text) */
		float *row = &s->cont_entropy[(size_t)s->n_cont * K];
		double zc = rng_normal(&r);
		for (uint32_t j = 0; j < K; j++) {
			if (j)
				zc = p->rho * zc + innov * rng_normal(&r);
			row[j] = entropy_of(mu + p->cont_shift + sd * zc);
		}
		s->cont_index[t] = (int32_t)s->n_cont;
		s->cont_pos[s->n_cont++] = t;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Fitting                                                             */

/* Floors for logs of what a trace may hold as 0 */
#define WL_H_FLOOR 1e-6
#define WL_P_FLOOR 1e-9

struct wl_fit {
	/* moments */
	double n, sum_a, sum_l, sum_l2;
	double lag_n, lag_xy, lag_x, lag_y, lag_x2, lag_y2;
	double cont_n, cont_l;
	double k_num, k_den;
	uint32_t prompt_min, prompt_max;
	double seqs, tokens;
	/* kept for the logistic regression */
	double *l, *a;
	size_t cap;
	int oom;
};

int wl_fit_new(struct wl_fit **out)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return -ENOMEM;
	(*out)->prompt_min = UINT32_MAX;
	return 0;
}

void wl_fit_free(struct wl_fit **f)
{
	if (!f || !*f)
		return;
	free((*f)->l);
	free((*f)->a);
	free(*f);
	*f = NULL;
}

void wl_fit_add(struct wl_fit *f, const struct trace_seq *s, uint32_t lookahead)
{
	if (f->n + s->n > (double)f->cap) {
		size_t cap = f->cap ? f->cap : 4096;
		while (cap < f->n + s->n)
			cap *= 2;
		double *l = realloc(f->l, cap * sizeof *l);
		if (l)
			f->l = l;
		double *a = realloc(f->a, cap * sizeof *a);
		if (a)
			f->a = a;
		if (!l || !a) {
			f->oom = 1; /* wl_fit_result reports it */
			return;
		}
		f->cap = cap;
	}
	double prev = 0;
	for (uint32_t t = 0; t < s->n; t++) {
		const double h = s->entropy[t] > WL_H_FLOOR ? s->entropy[t]
		                                            : WL_H_FLOOR;
		const double l = log(h);
		f->l[(size_t)f->n] = l;
		f->a[(size_t)f->n] = s->accept[t];
		f->n += 1;
		f->sum_a += s->accept[t];
		f->sum_l += l;
		f->sum_l2 += l * l;
		if (t) {
			f->lag_n += 1;
			f->lag_x += prev;
			f->lag_y += l;
			f->lag_xy += prev * l;
			f->lag_x2 += prev * prev;
			f->lag_y2 += l * l;
		}
		prev = l;
		const double t1 = s->top1[t] > WL_P_FLOOR ? s->top1[t]
		                                          : WL_P_FLOOR;
		f->k_num += h * -log(t1);
		f->k_den += h * h;
	}
	for (uint32_t c = 0; c < s->n_cont; c++)
		for (uint32_t j = 0; j < lookahead; j++) {
			const double h =
			        s->cont_entropy[(size_t)c * lookahead + j];
			f->cont_l += log(h > WL_H_FLOOR ? h : WL_H_FLOOR);
			f->cont_n += 1;
		}
	if (s->prompt_len < f->prompt_min)
		f->prompt_min = s->prompt_len;
	if (s->prompt_len > f->prompt_max)
		f->prompt_max = s->prompt_len;
	f->seqs += 1;
	f->tokens += s->n;
}

/* Logistic regression of a (in [0, 1]) on -l by Newton's method; the
 * variance of the slope from the inverse Hessian. */
static void fit_logistic(const struct wl_fit *f, double *a0, double *b,
                         double *se_b)
{
	double x0 = 0, x1 = 0;
	const size_t n = (size_t)f->n;
	for (int it = 0; it < 100; it++) {
		double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
		for (size_t i = 0; i < n; i++) {
			const double x = -f->l[i];
			const double p = logistic(x0 + x1 * x), w = p * (1 - p);
			g0 += f->a[i] - p;
			g1 += (f->a[i] - p) * x;
			h00 += w;
			h01 += w * x;
			h11 += w * x * x;
		}
		const double det = h00 * h11 - h01 * h01;
		if (!(det > 0))
			break;
		const double d0 = (h11 * g0 - h01 * g1) / det;
		const double d1 = (h00 * g1 - h01 * g0) / det;
		x0 += d0;
		x1 += d1;
		*se_b = sqrt(h00 / det);
		if (fabs(d0) + fabs(d1) < 1e-12)
			break;
	}
	*a0 = x0;
	*b = x1;
}

int wl_fit_result(struct wl_fit *f, int sampled, uint32_t lookahead,
                  struct wl_profile *est, struct wl_profile *se, char *err,
                  size_t errlen)
{
	if (f->oom) {
		util_set_err(err, errlen, "fit: out of memory");
		return -ENOMEM;
	}
	if (f->n < 2) {
		util_set_err(err, errlen, "fit: fewer than 2 positions");
		return -EINVAL;
	}
	memset(est, 0, sizeof *est);
	memset(se, 0, sizeof *se);
	snprintf(est->name, sizeof est->name, "fitted");
	const double n = f->n, mean_l = f->sum_l / n;
	const double var_l = f->sum_l2 / n - mean_l * mean_l;
	const double sd = var_l > 0 ? sqrt(var_l) : 0;
	/* lag-1 correlation within sequences */
	double rho = 0;
	if (f->lag_n > 1) {
		const double m = f->lag_n, cx = f->lag_x / m, cy = f->lag_y / m;
		const double cov = f->lag_xy / m - cx * cy;
		const double vx = f->lag_x2 / m - cx * cx;
		const double vy = f->lag_y2 / m - cy * cy;
		rho = vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 0;
	}
	if (rho < 0)
		rho = 0;
	/* AR(1): n positions carry about n (1 - rho) / (1 + rho) of
	 * independent information about a mean */
	const double n_eff = n * (1 - rho) / (1 + rho);
	est->acceptance = f->sum_a / n;
	est->h_median = exp(mean_l);
	est->h_sigma = sd;
	est->rho = rho;
	double a0 = 0, b = 0, se_b = 0;
	fit_logistic(f, &a0, &b, &se_b);
	est->coupling = b > 0 ? b : 0;
	est->cont_shift = f->cont_n > 0 ? f->cont_l / f->cont_n - mean_l : 0;
	est->top1_k = f->k_den > 0 ? f->k_num / f->k_den : 0;
	est->sequences = (uint32_t)f->seqs;
	est->tokens = (uint32_t)lround(f->tokens / f->seqs);
	est->prompt_min = f->prompt_min;
	est->prompt_max = f->prompt_max;
	est->lookahead = lookahead;
	est->sampled = sampled;
	/* standard errors */
	const double acc = est->acceptance;
	se->acceptance = sqrt(acc * (1 - acc) / n_eff);
	se->h_median = est->h_median * sd / sqrt(n_eff); /* delta method */
	se->h_sigma = sd * sqrt((1 + rho * rho) / (1 - rho * rho) / (2 * n));
	se->rho = sqrt((1 - rho * rho) / n);
	if (f->cont_n > 0)
		se->cont_shift = sd * sqrt((1 + rho) / (1 - rho) / f->cont_n +
		                           (1 + rho) / (1 - rho) / n);
	/* the logistic fit treats positions as independent; the correlated
	 * entropies make its error larger by about the AR(1) factor */
	se->coupling = se_b * sqrt((1 + rho) / (1 - rho));
	return wl_profile_finish(est, err, errlen);
}
