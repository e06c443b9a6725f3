/* repro_sweeps.c - sensitivity sweeps of +tvc (--sweep), the study on a
 * workload profile whose statistic moves (--workload-sweep), and the
 * hardware constants each of the paper's ratios would need
 * (--what-it-takes). */
#include "repro.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "hw.h"
#include "plugin.h"
#include "util.h"

/* ---- sweeps ---- */

/* Every value of a sweep takes, before any run: a hardware value on the
 * preset of +tvc, a policy parameter on the policy, a queue capacity.
 * @return 0 or -EINVAL with a message. */
int check_sweep(const struct sweep *sw, const char *values, char *err,
                size_t errlen)
{
	char buf[512];
	size_t nv = 0;
	int rc = 0;
	snprintf(buf, sizeof buf, "%s", values);
	for (char *v = strtok(buf, ","); v && !rc; v = strtok(NULL, ",")) {
		if (++nv > MAX_SWEEP_VALUES) {
			snprintf(err, errlen, "more than %d values",
			         MAX_SWEEP_VALUES);
			return -EINVAL;
		}
		if (sw->kind == SW_HW) {
			struct hw_platform p;
			rc = hw_platform_load(&p, configs[C_TVC].hw[F_PAPER],
			                      err, errlen);
			if (rc == 0)
				rc = hw_platform_set(&p, sw->key, v, err,
				                     errlen);
		} else if (sw->kind == SW_POLICY) {
			struct plugin pl = { 0 };
			const char *k = sw->key, *val = v;
			rc = plugin_load(&pl, configs[C_TVC].policy,
			                 AHASD_PLUGIN_POLICY, &k, &val, 1, err,
			                 errlen);
			plugin_unload(&pl);
		} else {
			char *end;
			unsigned long q = strtoul(v, &end, 10);
			if (*end || end == v || q < 1 || q > 4096) {
				snprintf(err, errlen,
				         "queue capacity '%s': "
				         "expected an integer in [1, 4096]",
				         v);
				rc = -EINVAL;
			}
		}
	}
	if (!nv) {
		snprintf(err, errlen, "no values");
		rc = -EINVAL;
	}
	return rc < 0 ? -EINVAL : 0;
}

int run_sweep(struct repro *r, const struct sweep *sw, const char *values,
              char *err, size_t errlen)
{
	char buf[512], *vals[MAX_SWEEP_VALUES];
	size_t nv = 0;
	snprintf(buf, sizeof buf, "%s", values);
	for (char *tok = strtok(buf, ","); tok && nv < MAX_SWEEP_VALUES;
	     tok = strtok(NULL, ","))
		vals[nv++] = tok;
	out(r,
	    "## Sensitivity: %s\n\n%s. Configuration +tvc (full AHASD) on "
	    "the %s workload, every pair and drafter; ratios against the "
	    "grid's GPU-only runs.\n\n| %s | throughput vs GPU-only | energy "
	    "eff. vs GPU-only | tokens/s |",
	    sw->name, sw->what, group_name(r, r->wgroup), sw->key);
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, " %s tput |", r->pairs[p]);
	out(r, " acceptance | pre-verified / drafted |\n|---|--:|--:|--:|");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "--:|");
	out(r, "--:|--:|\n");
	size_t nc = r->n_traces * r->n_pairs * r->n_drafters;
	struct result *res = calloc(nc, sizeof *res);
	struct cell_job *jobs = calloc(nc, sizeof *jobs);
	if (!res || !jobs) {
		free(res);
		free(jobs);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	for (size_t v = 0; v < nv && !rc; v++) {
		struct point pt = { sw, vals[v] };
		size_t nj = 0;
		for (size_t t = 0; t < r->n_traces; t++)
			for (size_t p = 0; p < r->n_pairs && in_group(r, t);
			     p++)
				for (size_t d = 0; d < r->n_drafters; d++)
					jobs[nj++] = (struct cell_job){
						r->fam,
						t,
						p,
						d,
						C_TVC,
						&pt,
						&res[cell(r, t, p, d)]
					};
		rc = run_cells(r, jobs, nj, err, errlen);
		if (rc)
			break;
		double ts = 0, tj = 0, tabs = 0, acc = 0, pv = 0, dr = 0;
		double pp[MAX_PAIRS] = { 0 };
		size_t n = 0, pn[MAX_PAIRS] = { 0 };
		for (size_t t = 0; t < r->n_traces; t++)
			for (size_t p = 0; p < r->n_pairs && in_group(r, t);
			     p++)
				for (size_t d = 0; d < r->n_drafters; d++) {
					const struct result *x =
					        &res[cell(r, t, p, d)];
					const struct result *g = grid_at(
					        r, t, p, d, C_GPU);
					double a = cell_ratio(x, g, M_TOK_S);
					double b = cell_ratio(x, g, M_TOK_J);
					if (isnan(a) || isnan(b))
						continue;
					ts += a;
					tj += b;
					pp[p] += a;
					pn[p]++;
					tabs += x->tok_s;
					acc += x->accept;
					pv += x->preverified;
					dr += x->drafted;
					n++;
				}
		double dn = n ? (double)n : NAN;
		out(r, "| %s | %.2fx | %.2fx | %.2f |", vals[v], ts / dn,
		    tj / dn, tabs / dn);
		for (size_t p = 0; p < r->n_pairs; p++)
			out(r, " %.2fx |", pn[p] ? pp[p] / (double)pn[p] : NAN);
		out(r, " %.3f | %.3f |\n", acc / dn, dr > 0 ? pv / dr : 0);
	}
	out(r, "\n");
	free(res);
	free(jobs);
	return rc;
}

/* ---- workload sweeps: the study on a profile whose statistic varies ---- */

int run_workload_sweep(struct repro *r, const char *spec, char *err,
                       size_t errlen)
{
	char key[64], buf[256], *vals[MAX_SWEEP_VALUES];
	const char *eq = strchr(spec, '=');
	if (!eq || (size_t)(eq - spec) >= sizeof key) {
		snprintf(err, errlen,
		         "--workload-sweep %s: expected KEY=V,V,...", spec);
		return -EINVAL;
	}
	memcpy(key, spec, (size_t)(eq - spec));
	key[eq - spec] = '\0';
	snprintf(buf, sizeof buf, "%s", eq + 1);
	size_t nv = 0;
	for (char *tok = strtok(buf, ","); tok && nv < MAX_SWEEP_VALUES;
	     tok = strtok(NULL, ","))
		vals[nv++] = tok;
	const struct workload *base = r->n_workloads ? &r->workloads[0] : NULL;
	struct workload bw;
	if (!base) {
		if (parse_workload(&bw, "7b-instruct", err, errlen) < 0)
			return -EINVAL;
		base = &bw;
	}
	/* every value is checked before the first run */
	for (size_t v = 0; v < nv; v++) {
		struct wl_profile p = base->prof;
		if (wl_profile_set(&p, key, vals[v], err, errlen) < 0 ||
		    wl_profile_finish(&p, err, errlen) < 0)
			return -EINVAL;
	}
	out(r,
	    "## Workload: %s from %s to %s\n\nThe %s profile, every "
	    "configuration on the paper's hardware, every pair and drafter; "
	    "throughput / energy efficiency against GPU-only on the same "
	    "stream.\n\n| %s |",
	    key, vals[0], vals[nv - 1], base->label, key);
	for (size_t k = 1; k < N_CONFIGS; k++)
		out(r, " %s |", configs[k].name);
	out(r, " +tvc vs SpecPIM | +tvc vs npu-pim-sync |\n|---|");
	for (size_t k = 1; k < N_CONFIGS + 2; k++)
		out(r, "--:|");
	out(r, "\n");
	const size_t ncell = r->n_pairs * r->n_drafters * N_CONFIGS;
	struct result *res = calloc(ncell, sizeof *res);
	if (!res) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	const int keep_fam = r->fam;
	r->fam = F_PAPER;
	for (size_t v = 0; v < nv && !rc; v++) {
		struct workload w = *base;
		char label[160];
		rc = wl_profile_set(&w.prof, key, vals[v], err, errlen);
		if (!rc)
			rc = wl_profile_finish(&w.prof, err, errlen);
		if (!rc &&
		    (size_t)snprintf(w.label, sizeof w.label, "%.*s %s=%s",
		                     (int)(sizeof w.label / 2), base->label,
		                     key, vals[v]) >= sizeof w.label) {
			snprintf(err, errlen,
			         "--workload-sweep %s=%s: label too "
			         "long",
			         key, vals[v]);
			rc = -EINVAL;
		}
		if (!rc)
			rc = push_workload(r, &w, 0, err, errlen);
		if (rc)
			break;
		snprintf(label, sizeof label, "repro-workload %s=%s", key,
		         vals[v]);
		r->label_prefix = label;
		memset(res, 0, ncell * sizeof *res);
		rc = run_trace_all(r, r->n_traces - 1, res, NULL, 0, err,
		                   errlen);
		r->label_prefix = NULL;
		r->n_traces--;
		trace_data_free(&r->traces[r->n_traces]);
		if (rc)
			break;
		char a[16], b[16];
		out(r, "| %s |", vals[v]);
		for (size_t k = 1; k < N_CONFIGS; k++)
			out(r, " %s / %s |",
			    fx(a, sizeof a,
			       mean_ratio(r, res, k, C_GPU, M_TOK_S)),
			    fx(b, sizeof b,
			       mean_ratio(r, res, k, C_GPU, M_TOK_J)));
		out(r, " %s | %s |\n",
		    fx(a, sizeof a,
		       mean_ratio(r, res, C_TVC, C_SPECPIM, M_TOK_S)),
		    fx(b, sizeof b,
		       mean_ratio(r, res, C_TVC, C_SYNC, M_TOK_S)));
	}
	r->fam = keep_fam;
	out(r, "\n");
	free(res);
	return rc;
}

/* ---- what it would take: the hardware constant values at which the
 * model reaches each of the paper's ratios ---- */

const struct wit_ratio wit_ratios[] = {
	{ "AHASD vs GPU-only, throughput", C_TVC, C_GPU, M_TOK_S, 3.8 },
	{ "AHASD vs GPU-only, energy eff.", C_TVC, C_GPU, M_TOK_J, 5.2 },
	{ "AHASD vs SpecPIM, throughput", C_TVC, C_SPECPIM, M_TOK_S, 1.5 },
	{ "AHASD vs NPU+LPDDR5, throughput", C_TVC, C_LPDDR5, M_TOK_S, 3.1 },
	{ "+AAU vs async, throughput", C_AAU, C_ASYNC, M_TOK_S, 2.7 / 2.2 },
	{ "+EDC vs +AAU, throughput", C_EDC, C_AAU, M_TOK_S, 3.4 / 2.7 },
	{ "+TVC vs +EDC, throughput", C_TVC, C_EDC, M_TOK_S, 3.8 / 3.4 },
};
const size_t n_wit_ratios = sizeof wit_ratios / sizeof *wit_ratios;

const struct wit_const wit_consts[] = {
	{ "pim-bw", "PIM in-bank bandwidth", { "npu-pim" }, { "pim.mem_bw" } },
	{ "pim-ops", "PIM compute", { "npu-pim" }, { "pim.matrix_ops" } },
	{ "npu-bw", "NPU off-chip bandwidth", { "npu-pim" }, { "npu.mem_bw" } },
	{ "npu-ops", "NPU compute", { "npu-pim" }, { "npu.matrix_ops" } },
	{ "gpu-bw", "GPU bandwidth (GPU-only)", { "gpu" }, { "gpu.mem_bw" } },
	{ "host-link",
	  "GPU host link (GPU-only)",
	  { "gpu" },
	  { "host_link_bw" } },
	{ "static-w",
	  "static power (NPU + PIM)",
	  { "npu-pim", "npu-pim" },
	  { "npu.static_w", "pim.static_w" } },
	{ "pj-bit",
	  "DRAM pJ/bit (NPU + PIM)",
	  { "npu-pim", "npu-pim" },
	  { "npu.pj_per_bit", "pim.pj_per_bit" } },
	/* two constants at once */
	{ "pim-bw+npu-bw",
	  "PIM and NPU bandwidth together",
	  { "npu-pim", "npu-pim" },
	  { "pim.mem_bw", "npu.mem_bw" } },
	{ "pim-bw+pim-ops",
	  "PIM bandwidth and compute together",
	  { "npu-pim", "npu-pim" },
	  { "pim.mem_bw", "pim.matrix_ops" } },
	{ "npu-bw+gpu-bw",
	  "NPU bandwidth up, GPU's down by as much",
	  { "npu-pim", "gpu" },
	  { "npu.mem_bw", "gpu.mem_bw" } },
};
const size_t n_wit_consts = sizeof wit_consts / sizeof *wit_consts;
#define WIT_RANGE   64.0 /* factors searched: [1/64, 64] */
#define WIT_SAMPLES 9
#define WIT_STEPS   14

/* A preset key's stated value. */
static int stated_value(const char *preset, const char *key, double *v,
                        char *err, size_t errlen)
{
	struct hw_platform p;
	char desc[8192], want[96];
	if (hw_platform_load(&p, preset, err, errlen) < 0 ||
	    hw_platform_describe(&p, desc, sizeof desc) < 0)
		return -EINVAL;
	snprintf(want, sizeof want, "\n%s = ", key);
	const char *at = strstr(desc, want);
	if (!at) {
		snprintf(err, errlen, "%s: no key %s", preset, key);
		return -EINVAL;
	}
	*v = strtod(at + strlen(want), NULL);
	return 0;
}

struct wit_eval {
	struct repro *r;
	size_t trace;
	const struct wit_ratio *ra;
	const struct wit_const *co;
	double stated[2];
	int inverse[2]; /* the second key moves the other way */
	struct result *res;
	int cached[2]; /* numerator, denominator runs current */
	uint64_t runs;
};

/* The ratio with the constant at factor f. */
static double wit_ratio_at(struct wit_eval *e, double f, char *err,
                           size_t errlen)
{
	struct repro *r = e->r;
	r->n_ovr = 0;
	for (int i = 0; i < 2 && e->co->key[i]; i++) {
		struct hw_override *o = &r->ovr[r->n_ovr++];
		o->preset = e->co->preset[i];
		o->key = e->co->key[i];
		snprintf(o->value, sizeof o->value, "%.17g",
		         e->stated[i] * (e->inverse[i] ? 1.0 / f : f));
	}
	/* a side whose preset takes no override is run once per search */
	int moves[2] = { 0, 0 };
	const size_t side[2] = { e->ra->num, e->ra->den };
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 2 && e->co->key[i]; i++)
			moves[k] |= !strcmp(e->co->preset[i],
			                    configs[side[k]].hw[F_PAPER]);
	unsigned only[2];
	size_t n_only = 0;
	for (int k = 0; k < 2; k++)
		if (moves[k] || !e->cached[k])
			only[n_only++] = (unsigned)side[k];
	const uint64_t runs0 = r->runs;
	int rc = n_only ? run_trace_all(r, e->trace, e->res, only, n_only, err,
	                                errlen)
	                : 0;
	r->n_ovr = 0;
	e->runs += r->runs - runs0;
	if (rc < 0)
		return NAN;
	for (int k = 0; k < 2; k++)
		e->cached[k] = !moves[k];
	return mean_ratio(r, e->res, e->ra->num, e->ra->den, e->ra->m);
}

int run_what_it_takes(struct repro *r, const char *const *ratios,
                      size_t n_ratios, const char *const *consts,
                      size_t n_consts, char *err, size_t errlen)
{
	struct workload w;
	if (parse_workload(&w, "7b-instruct:sequences=8:tokens=512", err,
	                   errlen) < 0)
		return -EINVAL;
	if (r->n_workloads)
		w = r->workloads[0];
	const char *keep_db = r->db_path;
	r->db_path = NULL; /* thousands of probes: not stored */
	int rc = push_workload(r, &w, 0, err, errlen);
	if (rc)
		goto out_db;
	const size_t t = r->n_traces - 1;
	struct result *res = calloc(r->n_pairs * r->n_drafters * N_CONFIGS,
	                            sizeof *res);
	if (!res) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_trace;
	}
	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	uint64_t probes = 0;
	out(r,
	    "## What it would take\n\nFor each of the paper's ratios, the "
	    "value each hardware constant of the paper's platform would need, "
	    "changed alone (or two at once, last rows), for the model to reach "
	    "the paper's figure. Workload: %s; pairs: ",
	    w.label);
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "%s%s", p ? ", " : "", r->pairs[p]);
	out(r,
	    "; every drafter; ratios are means over them. Factors searched "
	    "in [1/%g, %g] of the stated value, %d log-spaced samples, then "
	    "bisection where the response is monotone between the bracketing "
	    "samples. Where two constants move, both scale by the factor "
	    "(npu-bw+gpu-bw: the GPU's by its inverse); stated and needed "
	    "are the first one's.\n\n| ratio | now | paper | constant | stated "
	    "| needed | "
	    "factor | note |\n|---|--:|--:|---|--:|--:|--:|---|\n",
	    WIT_RANGE, WIT_RANGE, WIT_SAMPLES);
	for (size_t i = 0; i < N_WIT_RATIOS && !rc; i++) {
		const struct wit_ratio *ra = &wit_ratios[i];
		int want = !n_ratios;
		for (size_t k = 0; k < n_ratios; k++)
			want |= strstr(ra->name, ratios[k]) != NULL;
		if (!want)
			continue;
		for (size_t c = 0; c < N_WIT_CONSTS && !rc; c++) {
			const struct wit_const *co = &wit_consts[c];
			want = !n_consts;
			for (size_t k = 0; k < n_consts; k++)
				want |= !strcmp(co->name, consts[k]);
			if (!want)
				continue;
			struct wit_eval e = { r,   t,        ra,
				              co,  { 0, 0 }, { 0, 0 },
				              res, { 0, 0 }, 0 };
			for (int k = 0; k < 2 && co->key[k]; k++) {
				rc = stated_value(co->preset[k], co->key[k],
				                  &e.stated[k], err, errlen);
				e.inverse[k] = k == 1 &&
				               !strcmp(co->name,
				                       "npu-bw+gpu-bw");
			}
			if (rc)
				break;
			double fs[WIT_SAMPLES], vs[WIT_SAMPLES];
			for (int k = 0; k < WIT_SAMPLES && !rc; k++) {
				fs[k] = pow(WIT_RANGE,
				            2.0 * k / (WIT_SAMPLES - 1) - 1);
				vs[k] = wit_ratio_at(&e, fs[k], err, errlen);
				if (isnan(vs[k]) && err[0])
					rc = -EINVAL;
			}
			if (rc)
				break;
			const double now = wit_ratio_at(&e, 1.0, err, errlen);
			int up = 0, down = 0;
			for (int k = 1; k < WIT_SAMPLES; k++) {
				up |= vs[k] > vs[k - 1] * (1 + 1e-9);
				down |= vs[k] < vs[k - 1] * (1 - 1e-9);
			}
			/* the first bracket of the target */
			int b = -1;
			for (int k = 1; k < WIT_SAMPLES && b < 0; k++)
				if ((vs[k - 1] - ra->paper) *
				            (vs[k] - ra->paper) <=
				    0)
					b = k;
			char stated[32], needed[32] = "-", factor[32] = "-",
			                 note[160];
			snprintf(stated, sizeof stated, "%.4g", e.stated[0]);
			if (b < 0) {
				double lo = vs[0], hi = vs[0];
				for (int k = 1; k < WIT_SAMPLES; k++) {
					lo = fmin(lo, vs[k]);
					hi = fmax(hi, vs[k]);
				}
				if (!up && !down)
					snprintf(note, sizeof note,
					         "no effect (%.3g "
					         "throughout)",
					         now);
				else
					snprintf(note, sizeof note,
					         "not reachable in "
					         "[1/%g, %g]x: %.3g to %.3g",
					         WIT_RANGE, WIT_RANGE, lo, hi);
			} else {
				/* bisect in log space between the samples */
				double fl = fs[b - 1], fh = fs[b],
				       vl = vs[b - 1];
				for (int it = 0; it < WIT_STEPS && !rc; it++) {
					const double fm = sqrt(fl * fh);
					const double vm = wit_ratio_at(
					        &e, fm, err, errlen);
					if (isnan(vm) && err[0]) {
						rc = -EINVAL;
						break;
					}
					if ((vl - ra->paper) *
					            (vm - ra->paper) <=
					    0) {
						fh = fm;
					} else {
						fl = fm;
						vl = vm;
					}
				}
				const double f = sqrt(fl * fh);
				snprintf(needed, sizeof needed, "%.4g",
				         e.stated[0] * f);
				snprintf(factor, sizeof factor, "%.3gx", f);
				snprintf(
				        note, sizeof note, "%s",
				        up && down
				                ? "not monotone: first crossing"
				                : "monotone: bisection");
			}
			probes += e.runs;
			char nw[24], pp[16];
			snprintf(nw, sizeof nw, "%.4gx", now);
			out(r,
			    "| %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n",
			    ra->name, nw, fx(pp, sizeof pp, ra->paper),
			    co->name, co->what, stated, needed, factor, note);
			fflush(r->md);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	out(r, "\n%llu probe runs in %.1f s.\n\n", (unsigned long long)probes,
	    (double)(w1.tv_sec - w0.tv_sec) +
	            (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9);
	free(res);
out_trace:
	r->n_traces--;
	trace_data_free(&r->traces[r->n_traces]);
out_db:
	r->db_path = keep_db;
	return rc;
}
