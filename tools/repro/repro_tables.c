/* repro_tables.c - statistics over the grid's cells and the Markdown
 * tables that put our values next to the paper's. */
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

/* ---- statistics over cells ---- */

struct agg {
	double mean, max;
	const char *max_pair, *max_drafter;
};

/* Mean over all cells of config c relative to config base (base < 0: the
 * absolute metric); max over (pair, drafter) after averaging over traces.
 * Only pair p (or all when p < 0). */
static struct agg aggregate(struct repro *r, size_t c, int base, enum metric m,
                            int p_only)
{
	struct agg a = { NAN, NAN, NULL, NULL };
	double sum = 0;
	size_t cnt = 0;
	for (size_t p = 0; p < r->n_pairs; p++) {
		if (p_only >= 0 && (size_t)p_only != p)
			continue;
		for (size_t d = 0; d < r->n_drafters; d++) {
			double ps = 0;
			size_t pc = 0;
			for (size_t t = 0; t < r->n_traces; t++) {
				if (!in_group(r, t))
					continue;
				const struct result *x = grid_at(r, t, p, d, c);
				double v =
				        base < 0
				                ? (x->done ? metric_of(x, m)
				                           : NAN)
				                : cell_ratio(
				                          x,
				                          grid_at(r, t, p, d,
				                                  (size_t)base),
				                          m);
				if (isnan(v))
					continue;
				ps += v;
				pc++;
			}
			if (!pc)
				continue;
			sum += ps;
			cnt += pc;
			double pm = ps / (double)pc;
			if (isnan(a.max) || pm > a.max) {
				a.max = pm;
				a.max_pair = r->pairs[p];
				a.max_drafter = r->drafters[d];
			}
		}
	}
	if (cnt)
		a.mean = sum / (double)cnt;
	return a;
}

/* ---- output ---- */

void out(struct repro *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(r->md, fmt, ap);
	va_end(ap);
}

const char *fx(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.2fx", v);
	return buf;
}

/* "ours / paper (diff)" flag: ** when ours differs from the paper by more
 * than 20 %. */
static const char *flag(double ours, double paper)
{
	if (isnan(ours) || paper <= 0)
		return "";
	return fabs(ours / paper - 1.0) > 0.20 ? " **" : "";
}

void table_setup(struct repro *r, double wall)
{
	out(r,
	    "Grid: %zu traces (captured and synthetic) x %zu model pairs x "
	    "%zu drafters x %zu configurations x %d hardware families = %llu "
	    "runs in %.1f s (database %s).\n\n",
	    r->n_traces, r->n_pairs, r->n_drafters, N_CONFIGS, r->n_fam,
	    (unsigned long long)r->runs, wall,
	    !r->db_path                ? "none"
	    : strrchr(r->db_path, '/') ? strrchr(r->db_path, '/') + 1
	                               : r->db_path);
	out(r, "Workloads: token streams of captured traces, and of workload "
	       "profiles (synthetic, traces/WORKLOADS.md), retargeted to the "
	       "model presets:\n\n| workload | trace | source | sequences | "
	       "tokens | sampling |\n|---|---|---|--:|--:|---|\n");
	for (size_t t = 0; t < r->n_traces; t++)
		out(r, "| %s | %s | %s:%s | %zu | %llu | %s |\n",
		    group_name(r, r->traces[t].group), r->traces[t].name,
		    r->traces[t].draft, r->traces[t].target,
		    r->traces[t].mem.n_seq,
		    (unsigned long long)r->traces[t].mem.tokens,
		    r->traces[t].sampled ? "sampled" : "greedy");
	out(r, "\nConfigurations (hardware preset per family: paper / "
	       "artifact / edge):\n\n| name | hw presets | policy | "
	       "parameters | hw overrides | drafter | paper's row |\n"
	       "|---|---|---|---|---|---|---|\n");
	for (size_t c = 0; c < N_CONFIGS; c++)
		out(r, "| %s | %s / %s / %s | %s | %s | %s | %s%s%s | %s |\n",
		    configs[c].name, configs[c].hw[F_PAPER],
		    configs[c].hw[F_ARTIFACT], configs[c].hw[F_EDGE],
		    configs[c].policy,
		    *configs[c].params ? configs[c].params : "-",
		    *configs[c].hw_params ? configs[c].hw_params : "-",
		    configs[c].drafter ? configs[c].drafter : "the cell's",
		    configs[c].drafter ? " " : "",
		    configs[c].drafter ? configs[c].drafter_params[F_PAPER]
		                       : "",
		    configs[c].what);
	out(r, "\nFamilies:\n\n");
	for (int f = 0; f < N_FAMILIES; f++)
		out(r, "- **%s**: %s.\n", families[f].name, families[f].what);
	out(r, "\nCells marked ** differ from the paper by more than 20 %%; "
	       "docs/REPRODUCTION.md gives the reasons.\n\n");
}

void table_ablation(struct repro *r)
{
	char a[16], b[16], c[16], d[16];
	out(r, "## Ablation (GPU-only = 1.0, mean over all cells)\n\n"
	       "| configuration | throughput (ours) | throughput (paper) | "
	       "energy eff. (ours) | energy eff. (paper) |\n"
	       "|---|--:|--:|--:|--:|\n");
	for (size_t k = 0; k < N_CONFIGS; k++) {
		struct agg ts = aggregate(r, k, C_GPU, M_TOK_S, -1);
		struct agg tj = aggregate(r, k, C_GPU, M_TOK_J, -1);
		double pt = NAN, pe = NAN;
		if (k >= C_ASYNC) {
			pt = paper_ablation[k - C_ASYNC][0];
			pe = paper_ablation[k - C_ASYNC][1];
		} else if (k == C_GPU) {
			pt = pe = 1.0;
		}
		out(r, "| %s | %s%s | %s | %s%s | %s |\n", configs[k].name,
		    fx(a, sizeof a, ts.mean), flag(ts.mean, pt),
		    isnan(pt) ? "-" : fx(b, sizeof b, pt),
		    fx(c, sizeof c, tj.mean), flag(tj.mean, pe),
		    isnan(pe) ? "-" : fx(d, sizeof d, pe));
	}
	out(r,
	    "\nPer model pair (throughput / energy efficiency vs "
	    "GPU-only, mean over drafters and traces):\n\n| configuration |");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, " %s |", r->pairs[p]);
	out(r, "\n|---|");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "--:|");
	out(r, "\n");
	for (size_t k = 0; k < N_CONFIGS; k++) {
		out(r, "| %s |", configs[k].name);
		for (size_t p = 0; p < r->n_pairs; p++) {
			struct agg ts = aggregate(r, k, C_GPU, M_TOK_S, (int)p);
			struct agg tj = aggregate(r, k, C_GPU, M_TOK_J, (int)p);
			out(r, " %s / %s |", fx(a, sizeof a, ts.mean),
			    fx(b, sizeof b, tj.mean));
		}
		out(r, "\n");
	}
	out(r, "\nAbsolute throughput (tokens/s, mean over drafters and "
	       "traces):\n\n| configuration |");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, " %s |", r->pairs[p]);
	out(r, "\n|---|");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "--:|");
	out(r, "\n");
	for (size_t k = 0; k < N_CONFIGS; k++) {
		out(r, "| %s |", configs[k].name);
		for (size_t p = 0; p < r->n_pairs; p++)
			out(r, " %.2f |",
			    aggregate(r, k, -1, M_TOK_S, (int)p).mean);
		out(r, "\n");
	}
	out(r, "\n");
}

static void headline_row(struct repro *r, const char *what, size_t base,
                         enum metric m, double paper, const char *pnote)
{
	char a[16], b[16], c[16];
	struct agg g = aggregate(r, C_TVC, (int)base, m, -1);
	out(r, "| %s | %s%s | %s | %s | %s (%s) |\n", what,
	    fx(a, sizeof a, g.max), flag(g.max, paper), fx(b, sizeof b, g.mean),
	    g.max_pair ? g.max_pair : "-", fx(c, sizeof c, paper), pnote);
	(void)c;
}

void table_headline(struct repro *r)
{
	out(r, "## AHASD (+tvc) against GPU-only and SpecPIM\n\n"
	       "Max: the best (pair, drafter) after averaging over traces.\n\n"
	       "| ratio | max (ours) | mean (ours) | max at | paper |\n"
	       "|---|--:|--:|---|--:|\n");
	headline_row(r, "throughput vs GPU-only", C_GPU, M_TOK_S, 4.2, "up to");
	headline_row(r, "energy eff. vs GPU-only", C_GPU, M_TOK_J, 5.6,
	             "up to");
	headline_row(r, "throughput vs SpecPIM", C_SPECPIM, M_TOK_S, 1.5,
	             "up to");
	headline_row(r, "energy eff. vs SpecPIM", C_SPECPIM, M_TOK_J, 1.24,
	             "about");
	out(r, "\n");
}

/* Mean power of a device (by name) in config c over all cells, W. */
static double mean_power(struct repro *r, size_t c, const char *dev)
{
	double s = 0;
	size_t n = 0;
	for (size_t t = 0; t < r->n_traces; t++)
		for (size_t p = 0; p < r->n_pairs && in_group(r, t); p++)
			for (size_t d = 0; d < r->n_drafters; d++) {
				const struct result *x = grid_at(r, t, p, d, c);
				for (int i = 0; i < HW_MAX_DEV && x->done; i++)
					if (!strcmp(x->dev[i], dev)) {
						s += x->dev_w[i];
						n++;
					}
			}
	return n ? s / (double)n : NAN;
}

void table_lpddr5(struct repro *r)
{
	static const struct {
		size_t c;
		const char *name;
		double tput, ept, mem, npu;
	} rows[] = {
		{ C_ASYNC, "NPU+LPDDR5-PIM (npu-pim-async)", 2.20, 0.64, 1.90,
		  1.10 },
		{ C_TVC, "AHASD (+tvc)", 3.10, 0.48, 2.00, 1.15 },
	};
	char a[16], b[16], c[16], e[16];
	double base_npu = mean_power(r, C_LPDDR5, "npu");
	out(r,
	    "## Against NPU + plain LPDDR5 (= 1.0)\n\n"
	    "Energy/token is the inverse of energy efficiency, per cell. "
	    "Power: mean device power (dynamic + static over the run). The "
	    "baseline's single `npu` device carries its LPDDR5 (background "
	    "and access energy), so the paper's memory-power column has no "
	    "counterpart; we show PIM-device power over the baseline's whole "
	    "power instead. Baseline mean power: %.2f W.\n\n"
	    "| configuration | throughput | paper | energy/token | paper | "
	    "NPU device power | paper (NPU) | PIM power / baseline power | "
	    "paper (memory) |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
	    base_npu);
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
		struct agg ts = aggregate(r, rows[i].c, C_LPDDR5, M_TOK_S, -1);
		struct agg tj = aggregate(r, rows[i].c, C_LPDDR5, M_TOK_J, -1);
		/* energy/token ratio = mean over cells of 1 / (tok/J ratio) */
		double ept = 0;
		size_t n = 0;
		for (size_t t = 0; t < r->n_traces; t++)
			for (size_t p = 0; p < r->n_pairs && in_group(r, t);
			     p++)
				for (size_t d = 0; d < r->n_drafters; d++) {
					double v = cell_ratio(
					        grid_at(r, t, p, d, rows[i].c),
					        grid_at(r, t, p, d, C_LPDDR5),
					        M_TOK_J);
					if (!isnan(v) && v > 0) {
						ept += 1.0 / v;
						n++;
					}
				}
		ept = n ? ept / (double)n : NAN;
		(void)tj;
		double npu = mean_power(r, rows[i].c, "npu") / base_npu;
		double pim = mean_power(r, rows[i].c, "pim") / base_npu;
		out(r,
		    "| %s | %s%s | %.2fx | %s%s | %.2fx | %s%s | %.2fx | "
		    "%s | %.2fx |\n",
		    rows[i].name, fx(a, sizeof a, ts.mean),
		    flag(ts.mean, rows[i].tput), rows[i].tput,
		    fx(b, sizeof b, ept), flag(ept, rows[i].ept), rows[i].ept,
		    fx(c, sizeof c, npu), flag(npu, rows[i].npu), rows[i].npu,
		    fx(e, sizeof e, pim), rows[i].mem);
	}
	out(r, "\n");
}

void table_acceptance(struct repro *r)
{
	char a[16], b[16];
	out(r, "## Acceptance rate (accepted / drafted tokens, mean over "
	       "cells)\n\n| configuration | acceptance |\n|---|--:|\n");
	for (size_t k = 0; k < N_CONFIGS; k++)
		out(r, "| %s | %.3f |\n", configs[k].name,
		    aggregate(r, k, -1, M_ACCEPT, -1).mean);
	double sync = aggregate(r, C_GPU, -1, M_ACCEPT, -1).mean;
	double naive = aggregate(r, C_AAU, -1, M_ACCEPT, -1).mean;
	double edc = aggregate(r, C_EDC, -1, M_ACCEPT, -1).mean;
	double d1 = (naive / sync - 1) * 100, d2 = (edc / naive - 1) * 100;
	out(r,
	    "\n| change | ours | paper |\n|---|--:|--:|\n"
	    "| synchronous -> naive async (+aau) | %+.1f %%%s | -25.1 %% |\n"
	    "| naive async (+aau) -> +EDC | %+.1f %%%s | +24.6 %% |\n",
	    d1, flag(d1, -25.1), d2, flag(d2, 24.6));
	/* EDC's throughput gain over +AAU by pair and for LLaMA2 + AdaEDL */
	out(r, "\n+EDC throughput over +AAU (paper: LLaMA2 + AdaEDL +33 %%, "
	       "OPT under 10 %%):\n\n| pair | all drafters | adaedl |\n"
	       "|---|--:|--:|\n");
	int ada = -1;
	for (size_t d = 0; d < r->n_drafters; d++)
		if (!strcmp(r->drafters[d], "adaedl"))
			ada = (int)d;
	for (size_t p = 0; p < r->n_pairs; p++) {
		double all = aggregate(r, C_EDC, C_AAU, M_TOK_S, (int)p).mean;
		double one = NAN;
		if (ada >= 0) {
			double s = 0;
			size_t n = 0;
			for (size_t t = 0; t < r->n_traces; t++) {
				if (!in_group(r, t))
					continue;
				double v = cell_ratio(
				        grid_at(r, t, p, (size_t)ada, C_EDC),
				        grid_at(r, t, p, (size_t)ada, C_AAU),
				        M_TOK_S);
				if (!isnan(v)) {
					s += v;
					n++;
				}
			}
			one = n ? s / (double)n : NAN;
		}
		snprintf(a, sizeof a, "%+.1f %%", (all - 1) * 100);
		snprintf(b, sizeof b, "%+.1f %%", (one - 1) * 100);
		out(r, "| %s | %s | %s |\n", r->pairs[p], a, b);
	}
	out(r, "\n");
}

/* Groups of traces present: bit g for group g. */
unsigned groups_present(const struct repro *r)
{
	unsigned m = 0;
	for (size_t t = 0; t < r->n_traces; t++)
		m |= 1u << r->traces[t].group;
	return m;
}

/* The study on each hardware family and workload side by side (GPU-only
 * of the same family = 1.0), with the paper's figures. */
void table_families(struct repro *r, unsigned mask)
{
	char a[16], b[16], pt[16], pe[16];
	const int keep = r->fam, keep_g = r->wgroup;
	const unsigned gm = groups_present(r);
	out(r, "## The paper's hardware and the authors' released "
	       "configurations, on each workload, side by side\n\nThroughput / "
	       "energy efficiency against the GPU-only run of the same family "
	       "and workload, mean over its cells.\n\n| configuration |");
	for (int f = 0; f < N_FAMILIES; f++)
		for (int g = 0; g < 32; g++)
			if ((mask & (1u << f)) && (gm & (1u << g)))
				out(r, " %s, %s |", families[f].name,
				    group_name(r, g));
	out(r, " paper |\n|---|");
	for (int f = 0; f < N_FAMILIES; f++)
		for (int g = 0; g < 32; g++)
			if ((mask & (1u << f)) && (gm & (1u << g)))
				out(r, "--:|");
	out(r, "--:|\n");
	for (size_t k = 0; k < N_CONFIGS; k++) {
		out(r, "| %s |", configs[k].name);
		for (int f = 0; f < N_FAMILIES; f++)
			for (int g = 0; g < 32; g++) {
				if (!(mask & (1u << f)) || !(gm & (1u << g)))
					continue;
				r->fam = f;
				r->wgroup = g;
				struct agg ts = aggregate(r, k, C_GPU, M_TOK_S,
				                          -1);
				struct agg tj = aggregate(r, k, C_GPU, M_TOK_J,
				                          -1);
				out(r, " %s / %s |", fx(a, sizeof a, ts.mean),
				    fx(b, sizeof b, tj.mean));
			}
		if (k >= C_ASYNC)
			out(r, " %s / %s |",
			    fx(pt, sizeof pt, paper_ablation[k - C_ASYNC][0]),
			    fx(pe, sizeof pe, paper_ablation[k - C_ASYNC][1]));
		else
			out(r, " %s |", k == C_GPU ? "1.00x / 1.00x" : "-");
		out(r, "\n");
	}
	out(r, "\n| headline (max over pair, drafter) |");
	for (int f = 0; f < N_FAMILIES; f++)
		for (int g = 0; g < 32; g++)
			if ((mask & (1u << f)) && (gm & (1u << g)))
				out(r, " %s, %s |", families[f].name,
				    group_name(r, g));
	out(r, " paper |\n|---|");
	for (int f = 0; f < N_FAMILIES; f++)
		for (int g = 0; g < 32; g++)
			if ((mask & (1u << f)) && (gm & (1u << g)))
				out(r, "--:|");
	out(r, "--:|\n");
	static const struct {
		const char *what;
		size_t base;
		enum metric m;
		double paper;
	} hl[] = {
		{ "AHASD throughput vs GPU-only", C_GPU, M_TOK_S, 4.2 },
		{ "AHASD energy eff. vs GPU-only", C_GPU, M_TOK_J, 5.6 },
		{ "AHASD throughput vs SpecPIM", C_SPECPIM, M_TOK_S, 1.5 },
		{ "AHASD energy eff. vs SpecPIM", C_SPECPIM, M_TOK_J, 1.24 },
		{ "AHASD throughput vs NPU+LPDDR5 (mean)", C_LPDDR5, M_TOK_S,
		  3.1 },
		{ "AHASD throughput vs NPU+PIM sync (mean)", C_SYNC, M_TOK_S,
		  NAN },
		{ "+EDC throughput vs +AAU (mean)", C_AAU, M_TOK_S, 3.4 / 2.7 },
	};
	for (size_t i = 0; i < sizeof hl / sizeof *hl; i++) {
		out(r, "| %s |", hl[i].what);
		const size_t num = i == 6 ? C_EDC : C_TVC;
		for (int f = 0; f < N_FAMILIES; f++)
			for (int g = 0; g < 32; g++) {
				if (!(mask & (1u << f)) || !(gm & (1u << g)))
					continue;
				r->fam = f;
				r->wgroup = g;
				struct agg ag = aggregate(
				        r, num, (int)hl[i].base, hl[i].m, -1);
				const double v = strstr(hl[i].what, "(mean)")
				                         ? ag.mean
				                         : ag.max;
				out(r, " %s |", fx(a, sizeof a, v));
			}
		out(r, " %s |\n",
		    isnan(hl[i].paper) ? "-" : fx(pt, sizeof pt, hl[i].paper));
	}
	out(r, "\n");
	r->fam = keep;
	r->wgroup = keep_g;
}

/* The PIM's share of each batch's latency in the synchronous NPU + PIM
 * schedule (the paper's Fig. 3: 12.3 % to 84.2 % with AdaEDL on LLaMA2). */
void table_share(struct repro *r)
{
	out(r,
	    "## PIM share of step latency, synchronous NPU + PIM "
	    "(npu-pim-sync)\n\nPer cell the minimum, mean and maximum over "
	    "its batches; here their extremes and mean over traces.\n\n"
	    "| pair | drafter | min | mean | max |\n|---|---|--:|--:|--:|\n");
	for (size_t p = 0; p < r->n_pairs; p++)
		for (size_t d = 0; d < r->n_drafters; d++) {
			double lo = INFINITY, hi = -INFINITY, sum = 0;
			size_t n = 0;
			for (size_t t = 0; t < r->n_traces; t++) {
				if (!in_group(r, t))
					continue;
				const struct result *x = grid_at(r, t, p, d,
				                                 C_SYNC);
				if (!x->done || isnan(x->share_mean))
					continue;
				lo = fmin(lo, x->share_min);
				hi = fmax(hi, x->share_max);
				sum += x->share_mean;
				n++;
			}
			if (!n)
				continue;
			out(r, "| %s | %s | %.1f %% | %.1f %% | %.1f %% |\n",
			    r->pairs[p], r->drafters[d], 100 * lo,
			    100 * sum / (double)n, 100 * hi);
		}
	out(r, "\nPaper (Fig. 3, LLaMA2, AdaEDL): 12.3 %% to 84.2 %%.\n\n");
}
