/* ahasd-repro - reproduce the AHASD paper's study (Ma et al., DAC 2026).
 *
 * Runs the grid  traces x model pairs x drafters x configurations  through
 * the replay engine (in-process, one trace read once into memory), the
 * captured token streams retargeted to the paper's model presets
 * (replay/models), stores every run in one results database through db.h,
 * and prints the paper's tables with our value next to the paper's. With
 * --sweep it re-runs the full-AHASD configuration over one constant at a
 * time (sensitivity). docs/REPRODUCTION.md explains the numbers.
 *
 * Normalisation: every ratio is taken per cell (trace, pair, drafter)
 * against the gpu-only run of the same cell; "mean" is the arithmetic mean
 * over cells; "max" is the largest (pair, drafter) value after averaging
 * over traces.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "hw.h"
#include "models.h"
#include "outfile.h"
#include "results.h"
#include "run.h"
#include "sha256.h"
#include "trace.h"
#include "trace_mem.h"
#include "util.h"
#include "workload.h"

#define ERRLEN 1024
#define MAX_TRACES 32
#define MAX_PAIRS 8
#define MAX_DRAFTERS 8
#define MAX_SWEEP_VALUES 12
#define MAX_KV 8
#define MAX_OVR 4          /* --what-it-takes: constants probed at once */
#define DEFAULT_QCAP 32
#define DEFAULT_MAXD 64
#define SEED 1

/* ---- hardware families: the paper's stated platform, and the AHASD
 * authors' released configurations (main and edge; replay/presets/
 * artifact-*.ini cite every value) ---- */

enum { F_PAPER = 0, F_ARTIFACT, F_EDGE, N_FAMILIES };

struct family {
	const char *name;
	const char *what;
	uint32_t max_draft;        /* cap on a batch */
	uint32_t max_draft_ahasd;  /* ... in the AHASD configurations */
	const char *ahasd_params;  /* extra policy parameters of AHASD */
};

static const struct family families[N_FAMILIES] = {
	{ "paper", "the paper's stated hardware (npu-pim, npu-lpddr5, gpu, "
	  "gpu-pim)", DEFAULT_MAXD, DEFAULT_MAXD, "" },
	{ "artifact", "the authors' released main-family configuration "
	  "(artifact-*: a 4 x 128^2 NPU on HBM2, PIM on every second channel; "
	  "max_draft_length 4)", 4, 4, "" },
	{ "edge", "the authors' released edge family (artifact-edge-*: one "
	  "NPU channel and one PIM channel; max_draft_length 4, 6 for AHASD; "
	  "edc_h_max 6)", 4, 6, "h_max=6" },
};

/* ---- the named configurations ---- */

struct config {
	const char *name;
	const char *hw[N_FAMILIES]; /* hardware preset per family */
	const char *policy;    /* policy plugin */
	const char *params;    /* policy parameters "k=v k=v" */
	const char *hw_params; /* hardware overrides "k=v k=v" */
	const char *drafter;   /* NULL: the cell's drafter */
	const char *drafter_params[N_FAMILIES];
	int ahasd;             /* gets the family's AHASD settings */
	const char *what;      /* the paper's row */
};

#define PIM_HW { "npu-pim", "artifact-ahasd", "artifact-edge-ahasd" }
static const struct config configs[] = {
	{ "gpu-only", { "gpu", "artifact-gpu-only", "artifact-edge-gpu" },
	  "sync", "", "", NULL, { NULL }, 0,
	  "GPU-only: RTX 4090 Laptop, drafting and verification alternate" },
	{ "npu-lpddr5", { "npu-lpddr5", "artifact-npu-only",
	                  "artifact-edge-npu-only" },
	  "sync", "", "", NULL, { NULL }, 0,
	  "NPU + plain LPDDR5: both models on the NPU, alternating" },
	{ "specpim", { "gpu-pim", "artifact-specpim", "artifact-edge-specpim" },
	  "sync", "", "", "fixed", { "k=8", "k=4", "k=4" }, 0,
	  "SpecPIM: GPU + PIM, each operator on one device (a fixed mapping), "
	  "fixed draft length (8: the AHASD authors' SpecPIM; 4 in their "
	  "released files)" },
	{ "npu-pim-sync", PIM_HW, "sync", "", "", NULL, { NULL }, 0,
	  "NPU + PIM operator-level synchronous (Fig. 3): draft model on the "
	  "PIM, target on the NPU, each waiting" },
	{ "best-case-split", PIM_HW, "sync", "", "sync_placement=best", NULL,
	  { NULL }, 0,
	  "best-case split (not the paper's): every operator where it is "
	  "fastest at every step" },
	{ "npu-pim-async", PIM_HW, "ahasd", "edc=0 tvc=0", "aau=0", NULL,
	  { NULL }, 1,
	  "NPU + LPDDR5-PIM, task-level async (naive look-ahead), no AAU" },
	{ "+aau", PIM_HW, "ahasd", "edc=0 tvc=0", "aau=1", NULL, { NULL }, 1,
	  "+ Attention Algorithm Unit in the PIM" },
	{ "+edc", PIM_HW, "ahasd", "edc=1 tvc=0", "aau=1", NULL, { NULL }, 1,
	  "+ entropy-history-aware drafting control" },
	{ "+tvc", PIM_HW, "ahasd", "edc=1 tvc=1", "aau=1", NULL, { NULL }, 1,
	  "+ time-aware pre-verification control (full AHASD)" },
};
#undef PIM_HW
#define N_CONFIGS (sizeof configs / sizeof *configs)
enum { C_GPU = 0, C_LPDDR5, C_SPECPIM, C_SYNC, C_BEST, C_ASYNC, C_AAU,
       C_EDC, C_TVC };

/* The paper's ablation (GPU-only = 1.0): throughput, energy efficiency. */
static const double paper_ablation[4][2] = {
	{ 2.2, 1.9 }, { 2.7, 2.6 }, { 3.4, 4.5 }, { 3.8, 5.2 },
};

static const char *const default_pairs[] = {
	"opt-1.3b:opt-6.7b", "llama2-7b:llama2-13b", "palm-8b:palm-30b",
};
static const char *const default_drafters[] = {
	"specdecpp", "svip", "adaedl", "banditspec",
};

/* ---- sensitivity sweeps (issue 4, item 6): each re-runs +tvc ---- */

enum sweep_kind { SW_HW, SW_POLICY, SW_QCAP };

struct sweep {
	const char *name;
	enum sweep_kind kind;
	const char *key;       /* hw key or policy parameter */
	const char *values;    /* default values, comma-separated */
	const char *what;
};

static const struct sweep sweeps[] = {
	{ "pim-bw", SW_HW, "pim.mem_bw", "64e9,128e9,256e9,512e9,1024e9",
	  "PIM internal bandwidth (bytes/s; paper 256 GB/s)" },
	{ "npu-tops", SW_HW, "npu.matrix_ops", "4e12,8e12,16e12,32e12,64e12",
	  "NPU INT8 matrix peak (ops/s; paper 16 TOPS)" },
	{ "npu-bw", SW_HW, "npu.mem_bw",
	  "51.2e9,102.4e9,204.8e9,409.6e9,819.2e9",
	  "NPU weight bandwidth (bytes/s; paper: off-chip LPDDR5 51.2 GB/s)" },
	{ "h-max", SW_POLICY, "h_max", "1,2,4,6,8",
	  "EDC H_max, entropy at the top of the 8 bins (nats; default 4)" },
	{ "tvc-size", SW_POLICY, "tvc_size", "1,2,4,8,16",
	  "TVC table entries (paper 4)" },
	{ "queue-cap", SW_QCAP, "queue_capacity", "4,8,16,32,64",
	  "queue capacity, max unverified drafted tokens (default 32)" },
	{ "bus-block", SW_HW, "pim_bus_block", "0,0.1667,0.3333,0.6667,1",
	  "share of a channel's bandwidth the NPU loses while a PIM rank on "
	  "it works (default 2/3: PIMSimulator times a MAC as a READ burst)" },
	{ "rank-alloc", SW_HW, "pim_rank_alloc", "capacity,all",
	  "ranks per model in the partitioned layout (default all)" },
	{ "layout", SW_HW, "pim_layout", "partitioned,striped",
	  "where the models' weights live among the PIM's ranks" },
	{ "verify-batches", SW_HW, "verify_batches", "1,0",
	  "queued batches one NPU pass verifies (0: every ready one)" },
};
#define N_SWEEPS (sizeof sweeps / sizeof *sweeps)

/* ---- in-memory traces ---- */

struct trace_data {
	int group;                 /* 0: captured; g > 0: workload g - 1 */
	char path[PATH_MAX];
	char name[192];            /* file name without directory */
	char sha[65];
	char draft[TRACE_NAME_MAX], target[TRACE_NAME_MAX];
	uint32_t lookahead;
	int sampled;
	struct trace_mem mem;      /* the sequences */
};

struct result {
	int done;
	double tok_s, tok_j, accept, time_s, energy_j;
	double share_min, share_mean, share_max; /* the PIM's share (sync) */
	double dev_w[HW_MAX_DEV];  /* mean power per device */
	char dev[HW_MAX_DEV][16];
	double preverified, drafted;
	int64_t run_id;
};

/* A synthetic workload: a profile's stream (traces/WORKLOADS.md). */
struct workload {
	char label[160];           /* "7b-instruct" or "7b-instruct acceptance=0.6" */
	struct wl_profile prof;
};
#define MAX_WORKLOADS 4
#define WL_SEED 1

struct repro {
	struct db *db;
	const char *db_path;
	int quiet;
	size_t n_traces, n_pairs, n_drafters;
	struct trace_data traces[MAX_TRACES];
	const char *pairs[MAX_PAIRS];
	struct trace_model models[MAX_PAIRS][2];
	const char *drafters[MAX_DRAFTERS];
	struct result *grid;       /* [family][trace][pair][drafter][config] */
	int fam;                   /* the family the tables below describe */
	int n_fam;                 /* families run: [0, n_fam) */
	int wgroup;                /* the trace group the tables describe */
	const char *label_prefix;  /* runs of a workload sweep */
	/* hardware constants the what-it-takes search sets on presets */
	struct hw_override {
		const char *preset;
		const char *key;
		char value[40];
	} ovr[MAX_OVR];
	size_t n_ovr;
	size_t n_workloads;
	struct workload workloads[MAX_WORKLOADS];
	uint64_t runs;
	FILE *md;                  /* markdown accumulates here */
};

/* Is trace t in the group the tables describe? */
static int in_group(const struct repro *r, size_t t)
{
	return r->traces[t].group == r->wgroup;
}

static const char *group_name(const struct repro *r, int g)
{
	return g == 0 ? "captured" : r->workloads[g - 1].label;
}

static size_t cell(const struct repro *r, size_t t, size_t p, size_t d)
{
	return (t * r->n_pairs + p) * r->n_drafters + d;
}

static size_t cells(const struct repro *r)
{
	return r->n_traces * r->n_pairs * r->n_drafters;
}

/* A result of the current family (r->fam). */
static struct result *grid_at(struct repro *r, size_t t, size_t p, size_t d,
                              size_t c)
{
	return &r->grid[((size_t)r->fam * cells(r) + cell(r, t, p, d)) *
	                N_CONFIGS + c];
}

static void trace_data_free(struct trace_data *t)
{
	trace_mem_free(&t->mem);
}

/* A workload's sequences, generated into memory. */
static int trace_data_profile(struct trace_data *t, const struct workload *w,
                              int group, char *err, size_t errlen)
{
	char desc[512];
	memset(t, 0, sizeof *t);
	t->group = group;
	snprintf(t->path, sizeof t->path, "profile:%s", w->label);
	snprintf(t->name, sizeof t->name, "%s (synthetic)", w->label);
	wl_profile_describe(&w->prof, desc, sizeof desc);
	sha256_hex(desc, strlen(desc), t->sha);
	snprintf(t->draft, sizeof t->draft, "profile");
	snprintf(t->target, sizeof t->target, "%s", w->prof.name);
	t->lookahead = w->prof.lookahead;
	t->sampled = w->prof.sampled;
	trace_mem_init(&t->mem, t->lookahead);
	for (uint32_t i = 0; i < w->prof.sequences; i++) {
		struct trace_seq s;
		int rc = wl_generate(&w->prof, WL_SEED, i, &s);
		if (rc == 0) {
			rc = trace_mem_add(&t->mem, &s);
			wl_seq_free(&s);
		}
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			trace_data_free(t);
			return -ENOMEM;
		}
	}
	return 0;
}

/* "NAME" or "NAME:key=value:key=value" */
static int parse_workload(struct workload *w, const char *spec, char *err,
                          size_t errlen)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", spec);
	char *name = strtok_r(buf, ":", &save);
	if (!name || wl_profile_find(name, &w->prof, err, errlen) < 0) {
		if (!name)
			snprintf(err, errlen, "empty workload");
		return -EINVAL;
	}
	size_t pos = (size_t)snprintf(w->label, sizeof w->label, "%s", name);
	for (char *kv = strtok_r(NULL, ":", &save); kv;
	     kv = strtok_r(NULL, ":", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(err, errlen, "workload '%s': '%s' is not "
			         "key=value", spec, kv);
			return -EINVAL;
		}
		*eq = '\0';
		if (wl_profile_set(&w->prof, kv, eq + 1, err, errlen) < 0)
			return -EINVAL;
		if (pos < sizeof w->label)
			pos += (size_t)snprintf(w->label + pos, sizeof w->label - pos,
			                        " %s=%s", kv, eq + 1);
	}
	return wl_profile_finish(&w->prof, err, errlen);
}

static int trace_data_load(struct trace_data *t, const char *path,
                           int skip_synthetic, char *err, size_t errlen)
{
	struct trace_reader *rd = NULL;
	int rc;

	memset(t, 0, sizeof *t);
	snprintf(t->path, sizeof t->path, "%s", path);
	const char *slash = strrchr(path, '/');
	snprintf(t->name, sizeof t->name, "%s", slash ? slash + 1 : path);
	rc = trace_reader_open(&rd, path, err, errlen);
	if (rc < 0)
		goto out;
	const struct trace_header *h = trace_reader_header(rd);
	if (h->synthetic && skip_synthetic) {
		rc = 1;
		goto out;
	}
	snprintf(t->draft, sizeof t->draft, "%s", h->draft.name);
	snprintf(t->target, sizeof t->target, "%s", h->target.name);
	t->lookahead = h->lookahead;
	t->sampled = h->sampled;
	trace_mem_init(&t->mem, t->lookahead);
	rc = trace_mem_read(&t->mem, rd, err, errlen);
	if (rc < 0)
		goto out;
	/* hashed by the reader from the bytes it parsed, in the same pass */
	rc = trace_reader_sha256(rd, t->sha);
	if (rc < 0)
		snprintf(err, errlen, "%s: no hash after reading it", path);
out:
	trace_reader_close(&rd);
	if (rc != 0)
		trace_data_free(t);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every captured (non-synthetic) *.msgpack in dir, sorted by name. */
static int discover_traces(struct repro *r, const char *dir, char *err,
                           size_t errlen)
{
	char *names[MAX_TRACES * 4];
	size_t n = 0;
	int rc = 0;
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "traces directory %.512s: %s", dir,
		         strerror(errno));
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d)) && n < sizeof names / sizeof *names) {
		size_t l = strlen(e->d_name);
		if (l > 8 && !strcmp(e->d_name + l - 8, ".msgpack"))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (!names[i] || rc < 0)
			continue;
		int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (w < 0 || (size_t)w >= sizeof path)
			continue;
		if (r->n_traces == MAX_TRACES)
			break;
		int lr = trace_data_load(&r->traces[r->n_traces], path, 1, err,
		                         errlen);
		if (lr < 0)
			rc = lr;
		else if (lr == 0)
			r->n_traces++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	if (rc == 0 && r->n_traces == 0) {
		snprintf(err, errlen, "no captured traces in %.512s", dir);
		rc = -ENOENT;
	}
	return rc;
}

/* Split "k=v k=v" into up to max pairs in buf. */
static size_t split_kv(const char *s, char *buf, size_t buflen,
                       const char **keys, const char **vals, size_t max)
{
	size_t n = 0;
	snprintf(buf, buflen, "%s", s);
	for (char *tok = strtok(buf, " "); tok && n < max;
	     tok = strtok(NULL, " ")) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		keys[n] = tok;
		vals[n++] = eq + 1;
	}
	return n;
}

/* The sweep point of a run, or NULL for the main grid. */
struct point {
	const struct sweep *sw;
	const char *value;
};


/* One run: trace x pair x drafter x configuration (x sweep point). */
static int run_cell(struct repro *r, size_t ti, size_t pi, size_t di,
                    const struct config *cf, const struct point *pt,
                    struct result *res, char *err, size_t errlen)
{
	const struct trace_data *t = &r->traces[ti];
	const struct family *fm = &families[r->fam];
	struct run_kv hw[MAX_KV + 1 + MAX_OVR], pp[MAX_KV + 1], dp[2];
	/* split_kv cuts each string in its own buffer: the pointers into it
	 * must live until the run */
	char hwbuf[256], pbuf[256], pkv[256], dbuf[64], label[160];
	char retarget[160];
	const char *keys[MAX_KV + 1], *vals[MAX_KV + 1];
	uint32_t qcap = DEFAULT_QCAP;

	memset(res, 0, sizeof *res);
	/* hardware: the configuration's overrides, the sweep's point, then
	 * --what-it-takes' probes of this preset */
	size_t nh = split_kv(cf->hw_params, hwbuf, sizeof hwbuf, keys, vals,
	                     MAX_KV);
	for (size_t i = 0; i < nh; i++)
		hw[i] = (struct run_kv){ keys[i], vals[i] };
	if (pt && pt->sw->kind == SW_HW)
		hw[nh++] = (struct run_kv){ pt->sw->key, pt->value };
	for (size_t i = 0; i < r->n_ovr; i++)
		if (!strcmp(r->ovr[i].preset, cf->hw[r->fam]))
			hw[nh++] = (struct run_kv){ r->ovr[i].key,
			                            r->ovr[i].value };
	snprintf(pbuf, sizeof pbuf, "%s%s%s", cf->params,
	         cf->ahasd && *fm->ahasd_params ? " " : "",
	         cf->ahasd ? fm->ahasd_params : "");
	size_t np = split_kv(pbuf, pkv, sizeof pkv, keys, vals, MAX_KV);
	for (size_t i = 0; i < np; i++)
		pp[i] = (struct run_kv){ keys[i], vals[i] };
	if (pt && pt->sw->kind == SW_POLICY)
		pp[np++] = (struct run_kv){ pt->sw->key, pt->value };
	if (pt && pt->sw->kind == SW_QCAP)
		qcap = (uint32_t)strtoul(pt->value, NULL, 10);
	size_t nd = split_kv(cf->drafter ? cf->drafter_params[r->fam] : "",
	                     dbuf, sizeof dbuf, keys, vals, 2);
	for (size_t i = 0; i < nd; i++)
		dp[i] = (struct run_kv){ keys[i], vals[i] };

	if (pt)
		snprintf(label, sizeof label, "repro-sweep %s=%s %s",
		         pt->sw->name, pt->value, cf->name);
	else if (r->label_prefix)
		snprintf(label, sizeof label, "%s %s", r->label_prefix, cf->name);
	else if (r->fam != F_PAPER)
		snprintf(label, sizeof label, "repro %s %s", fm->name, cf->name);
	else
		snprintf(label, sizeof label, "repro %s", cf->name);
	snprintf(retarget, sizeof retarget, "%s:%s", t->draft, t->target);

	const struct run_spec spec = {
		.label = label,
		.preset = cf->hw[r->fam],
		.hw = hw,
		.n_hw = nh,
		.policy = cf->policy,
		.drafter = cf->drafter ? cf->drafter : r->drafters[di],
		.policy_params = pp,
		.n_policy_params = np,
		.drafter_params = dp,
		.n_drafter_params = nd,
		.seed = SEED,
		.queue_capacity = qcap,
		.max_draft = cf->ahasd ? fm->max_draft_ahasd : fm->max_draft,
	};
	const struct run_stream src = {
		.path = t->path,
		.sha256 = t->sha,
		.sampled = t->sampled,
		.lookahead = t->lookahead,
		.draft = &r->models[pi][0],
		.target = &r->models[pi][1],
		.retargeted_from = retarget,
		.mem = &t->mem,
		.max_context = t->mem.max_context,
		.max_context_id = t->mem.max_context_id,
	};
	struct run_result rr;
	int rc = run_execute(&spec, &src, r->db, &rr, err, errlen);
	if (rc < 0) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, " [%s, %s, %s, %s]", t->name,
		         r->pairs[pi], r->drafters[di], cf->name);
		return rc;
	}
	const struct replay_metrics *m = &rr.m;
	res->done = 1;
	res->time_s = m->time_s;
	res->energy_j = m->energy_j;
	res->tok_s = metric_value(m, "tokens_per_s");
	res->tok_j = metric_value(m, "tokens_per_j");
	res->accept = metric_value(m, "acceptance_rate");
	res->drafted = (double)m->drafted;
	res->preverified = (double)m->preverified;
	res->share_min = metric_value(m, "pim_share_min");
	res->share_max = metric_value(m, "pim_share_max");
	res->share_mean = metric_value(m, "pim_share_mean");
	for (unsigned i = 0; i < rr.n_dev; i++) {
		res->dev_w[i] = m->time_s > 0 ? m->dev_energy_j[i] / m->time_s
		                              : 0;
		snprintf(res->dev[i], sizeof res->dev[i], "%s", rr.dev_name[i]);
	}
	res->run_id = rr.run_id;
	r->runs++;
	return 0;
}

/* ---- statistics over cells ---- */

enum metric { M_TOK_S = 0, M_TOK_J, M_ACCEPT };

static double metric_of(const struct result *x, enum metric m)
{
	switch (m) {
	case M_TOK_S: return x->tok_s;
	case M_TOK_J: return x->tok_j;
	default: return x->accept;
	}
}

/* Ratio num/den of a metric for one cell; NaN if missing. */
static double cell_ratio(const struct result *num, const struct result *den,
                         enum metric m)
{
	if (!num->done || !den->done || metric_of(den, m) <= 0)
		return NAN;
	return metric_of(num, m) / metric_of(den, m);
}

struct agg {
	double mean, max;
	const char *max_pair, *max_drafter;
};

/* Mean over all cells of config c relative to config base (base < 0: the
 * absolute metric); max over (pair, drafter) after averaging over traces.
 * Only pair p (or all when p < 0). */
static struct agg aggregate(struct repro *r, size_t c, int base,
                            enum metric m, int p_only)
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
				double v = base < 0
				        ? (x->done ? metric_of(x, m) : NAN)
				        : cell_ratio(x, grid_at(r, t, p, d,
				                                (size_t)base), m);
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

static void out(struct repro *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out(struct repro *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(r->md, fmt, ap);
	va_end(ap);
}

static const char *fx(char *buf, size_t len, double v)
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

static void table_setup(struct repro *r, double wall)
{
	out(r, "Grid: %zu traces (captured and synthetic) x %zu model pairs x "
	    "%zu drafters x %zu configurations x %d hardware families = %llu "
	    "runs in %.1f s (database %s).\n\n",
	    r->n_traces, r->n_pairs, r->n_drafters, N_CONFIGS, r->n_fam,
	    (unsigned long long)r->runs, wall,
	    !r->db_path ? "none"
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
		    configs[c].drafter ? configs[c].drafter_params[F_PAPER] : "",
		    configs[c].what);
	out(r, "\nFamilies:\n\n");
	for (int f = 0; f < N_FAMILIES; f++)
		out(r, "- **%s**: %s.\n", families[f].name, families[f].what);
	out(r, "\nCells marked ** differ from the paper by more than 20 %%; "
	    "docs/REPRODUCTION.md gives the reasons.\n\n");
}

static void table_ablation(struct repro *r)
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
	out(r, "\nPer model pair (throughput / energy efficiency vs "
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
	    fx(a, sizeof a, g.max), flag(g.max, paper),
	    fx(b, sizeof b, g.mean), g.max_pair ? g.max_pair : "-",
	    fx(c, sizeof c, paper), pnote);
	(void)c;
}

static void table_headline(struct repro *r)
{
	out(r, "## AHASD (+tvc) against GPU-only and SpecPIM\n\n"
	    "Max: the best (pair, drafter) after averaging over traces.\n\n"
	    "| ratio | max (ours) | mean (ours) | max at | paper |\n"
	    "|---|--:|--:|---|--:|\n");
	headline_row(r, "throughput vs GPU-only", C_GPU, M_TOK_S, 4.2, "up to");
	headline_row(r, "energy eff. vs GPU-only", C_GPU, M_TOK_J, 5.6, "up to");
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

static void table_lpddr5(struct repro *r)
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
	out(r, "## Against NPU + plain LPDDR5 (= 1.0)\n\n"
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
			for (size_t p = 0; p < r->n_pairs && in_group(r, t); p++)
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
		out(r, "| %s | %s%s | %.2fx | %s%s | %.2fx | %s%s | %.2fx | "
		    "%s | %.2fx |\n", rows[i].name,
		    fx(a, sizeof a, ts.mean), flag(ts.mean, rows[i].tput),
		    rows[i].tput, fx(b, sizeof b, ept), flag(ept, rows[i].ept),
		    rows[i].ept, fx(c, sizeof c, npu), flag(npu, rows[i].npu),
		    rows[i].npu, fx(e, sizeof e, pim), rows[i].mem);
	}
	out(r, "\n");
}

static void table_acceptance(struct repro *r)
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
	out(r, "\n| change | ours | paper |\n|---|--:|--:|\n"
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
static unsigned groups_present(const struct repro *r)
{
	unsigned m = 0;
	for (size_t t = 0; t < r->n_traces; t++)
		m |= 1u << r->traces[t].group;
	return m;
}

/* The study on each hardware family and workload side by side (GPU-only
 * of the same family = 1.0), with the paper's figures. */
static void table_families(struct repro *r, unsigned mask)
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
				out(r, " %s, %s |", families[f].name, group_name(r, g));
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
				struct agg ts = aggregate(r, k, C_GPU, M_TOK_S, -1);
				struct agg tj = aggregate(r, k, C_GPU, M_TOK_J, -1);
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
				out(r, " %s, %s |", families[f].name, group_name(r, g));
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
				struct agg ag = aggregate(r, num, (int)hl[i].base,
				                          hl[i].m, -1);
				const double v = strstr(hl[i].what, "(mean)") ? ag.mean
				                                              : ag.max;
				out(r, " %s |", fx(a, sizeof a, v));
			}
		out(r, " %s |\n", isnan(hl[i].paper) ? "-"
		                   : fx(pt, sizeof pt, hl[i].paper));
	}
	out(r, "\n");
	r->fam = keep;
	r->wgroup = keep_g;
}

/* The PIM's share of each batch's latency in the synchronous NPU + PIM
 * schedule (the paper's Fig. 3: 12.3 % to 84.2 % with AdaEDL on LLaMA2). */
static void table_share(struct repro *r)
{
	out(r, "## PIM share of step latency, synchronous NPU + PIM "
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
				const struct result *x = grid_at(r, t, p, d, C_SYNC);
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

/* ---- sweeps ---- */

static int run_sweep(struct repro *r, const struct sweep *sw,
                     const char *values, char *err, size_t errlen)
{
	char buf[512], *vals[MAX_SWEEP_VALUES];
	size_t nv = 0;
	snprintf(buf, sizeof buf, "%s", values);
	for (char *tok = strtok(buf, ","); tok && nv < MAX_SWEEP_VALUES;
	     tok = strtok(NULL, ","))
		vals[nv++] = tok;
	out(r, "## Sensitivity: %s\n\n%s. Configuration +tvc (full AHASD) on "
	    "the %s workload, every pair and drafter; ratios against the "
	    "grid's GPU-only runs.\n\n| %s | throughput vs GPU-only | energy "
	    "eff. vs GPU-only | tokens/s |", sw->name, sw->what,
	    group_name(r, r->wgroup), sw->key);
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, " %s tput |", r->pairs[p]);
	out(r, " acceptance | pre-verified / drafted |\n|---|--:|--:|--:|");
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "--:|");
	out(r, "--:|--:|\n");
	size_t nc = r->n_traces * r->n_pairs * r->n_drafters;
	struct result *res = calloc(nc, sizeof *res);
	if (!res) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	for (size_t v = 0; v < nv && !rc; v++) {
		struct point pt = { sw, vals[v] };
		for (size_t t = 0; t < r->n_traces && !rc; t++)
			for (size_t p = 0; p < r->n_pairs && !rc && in_group(r, t);
			     p++)
				for (size_t d = 0; d < r->n_drafters && !rc; d++)
					rc = run_cell(r, t, p, d, &configs[C_TVC],
					              &pt, &res[cell(r, t, p, d)],
					              err, errlen);
		if (rc)
			break;
		double ts = 0, tj = 0, tabs = 0, acc = 0, pv = 0, dr = 0;
		double pp[MAX_PAIRS] = { 0 };
		size_t n = 0, pn[MAX_PAIRS] = { 0 };
		for (size_t t = 0; t < r->n_traces; t++)
			for (size_t p = 0; p < r->n_pairs && in_group(r, t); p++)
				for (size_t d = 0; d < r->n_drafters; d++) {
					const struct result *x = &res[cell(r, t, p, d)];
					const struct result *g = grid_at(r, t, p, d,
					                                 C_GPU);
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
	return rc;
}

/* ---- workload sweeps: the study on a profile whose statistic varies ---- */

/* Append a workload's generated trace as trace r->n_traces (group g). */
static int push_workload(struct repro *r, const struct workload *w, int g,
                         char *err, size_t errlen)
{
	if (r->n_traces == MAX_TRACES) {
		snprintf(err, errlen, "too many traces");
		return -E2BIG;
	}
	int rc = trace_data_profile(&r->traces[r->n_traces], w, g, err, errlen);
	if (rc == 0)
		r->n_traces++;
	return rc;
}

/* Every configuration on trace t (paper hardware), into res[p][d][k];
 * SpecPIM's fixed drafter once per pair. */
static int run_trace_all(struct repro *r, size_t t, struct result *res,
                         const unsigned *only, size_t n_only, char *err,
                         size_t errlen)
{
	for (size_t p = 0; p < r->n_pairs; p++)
		for (size_t d = 0; d < r->n_drafters; d++)
			for (size_t k = 0; k < N_CONFIGS; k++) {
				int want = !n_only;
				for (size_t i = 0; i < n_only; i++)
					want |= only[i] == k;
				struct result *x = &res[(p * r->n_drafters + d) *
				                        N_CONFIGS + k];
				if (!want)
					continue;
				if (configs[k].drafter && d > 0) {
					*x = res[(p * r->n_drafters) * N_CONFIGS + k];
					continue;
				}
				int rc = run_cell(r, t, p, d, &configs[k], NULL, x, err,
				                  errlen);
				if (rc < 0)
					return rc;
			}
	return 0;
}

/* Mean over (pair, drafter) of res[num] / res[den] for a metric. */
static double mean_ratio(const struct repro *r, const struct result *res,
                         size_t num, size_t den, enum metric m)
{
	double s = 0;
	size_t n = 0;
	for (size_t c = 0; c < r->n_pairs * r->n_drafters; c++) {
		double v = cell_ratio(&res[c * N_CONFIGS + num],
		                      &res[c * N_CONFIGS + den], m);
		if (!isnan(v)) {
			s += v;
			n++;
		}
	}
	return n ? s / (double)n : NAN;
}

static int run_workload_sweep(struct repro *r, const char *spec, char *err,
                              size_t errlen)
{
	char key[64], buf[256], *vals[MAX_SWEEP_VALUES];
	const char *eq = strchr(spec, '=');
	if (!eq || (size_t)(eq - spec) >= sizeof key) {
		snprintf(err, errlen, "--workload-sweep %s: expected KEY=V,V,...",
		         spec);
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
	out(r, "## Workload: %s from %s to %s\n\nThe %s profile, every "
	    "configuration on the paper's hardware, every pair and drafter; "
	    "throughput / energy efficiency against GPU-only on the same "
	    "stream.\n\n| %s |", key, vals[0], vals[nv - 1], base->label, key);
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
		if (!rc && (size_t)snprintf(w.label, sizeof w.label, "%.*s %s=%s",
		                            (int)(sizeof w.label / 2), base->label,
		                            key, vals[v]) >= sizeof w.label) {
			snprintf(err, errlen, "--workload-sweep %s=%s: label too "
			         "long", key, vals[v]);
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
		rc = run_trace_all(r, r->n_traces - 1, res, NULL, 0, err, errlen);
		r->label_prefix = NULL;
		r->n_traces--;
		trace_data_free(&r->traces[r->n_traces]);
		if (rc)
			break;
		char a[16], b[16];
		out(r, "| %s |", vals[v]);
		for (size_t k = 1; k < N_CONFIGS; k++)
			out(r, " %s / %s |",
			    fx(a, sizeof a, mean_ratio(r, res, k, C_GPU, M_TOK_S)),
			    fx(b, sizeof b, mean_ratio(r, res, k, C_GPU, M_TOK_J)));
		out(r, " %s | %s |\n",
		    fx(a, sizeof a, mean_ratio(r, res, C_TVC, C_SPECPIM, M_TOK_S)),
		    fx(b, sizeof b, mean_ratio(r, res, C_TVC, C_SYNC, M_TOK_S)));
	}
	r->fam = keep_fam;
	out(r, "\n");
	free(res);
	return rc;
}

/* ---- what it would take: the hardware constant values at which the
 * model reaches each of the paper's ratios ---- */

struct wit_ratio {
	const char *name;
	size_t num, den;
	enum metric m;
	double paper;
};

static const struct wit_ratio wit_ratios[] = {
	{ "AHASD vs GPU-only, throughput", C_TVC, C_GPU, M_TOK_S, 3.8 },
	{ "AHASD vs GPU-only, energy eff.", C_TVC, C_GPU, M_TOK_J, 5.2 },
	{ "AHASD vs SpecPIM, throughput", C_TVC, C_SPECPIM, M_TOK_S, 1.5 },
	{ "AHASD vs NPU+LPDDR5, throughput", C_TVC, C_LPDDR5, M_TOK_S, 3.1 },
	{ "+AAU vs async, throughput", C_AAU, C_ASYNC, M_TOK_S, 2.7 / 2.2 },
	{ "+EDC vs +AAU, throughput", C_EDC, C_AAU, M_TOK_S, 3.4 / 2.7 },
	{ "+TVC vs +EDC, throughput", C_TVC, C_EDC, M_TOK_S, 3.8 / 3.4 },
};
#define N_WIT_RATIOS (sizeof wit_ratios / sizeof *wit_ratios)

/* A constant: up to two preset keys scaled together by one factor. */
struct wit_const {
	const char *name;
	const char *what;
	const char *preset[2], *key[2];
};

static const struct wit_const wit_consts[] = {
	{ "pim-bw", "PIM in-bank bandwidth", { "npu-pim" }, { "pim.mem_bw" } },
	{ "pim-ops", "PIM compute", { "npu-pim" }, { "pim.matrix_ops" } },
	{ "npu-bw", "NPU off-chip bandwidth", { "npu-pim" }, { "npu.mem_bw" } },
	{ "npu-ops", "NPU compute", { "npu-pim" }, { "npu.matrix_ops" } },
	{ "gpu-bw", "GPU bandwidth (GPU-only)", { "gpu" }, { "gpu.mem_bw" } },
	{ "host-link", "GPU host link (GPU-only)", { "gpu" },
	  { "host_link_bw" } },
	{ "static-w", "static power (NPU + PIM)", { "npu-pim", "npu-pim" },
	  { "npu.static_w", "pim.static_w" } },
	{ "pj-bit", "DRAM pJ/bit (NPU + PIM)", { "npu-pim", "npu-pim" },
	  { "npu.pj_per_bit", "pim.pj_per_bit" } },
	/* two constants at once */
	{ "pim-bw+npu-bw", "PIM and NPU bandwidth together",
	  { "npu-pim", "npu-pim" }, { "pim.mem_bw", "npu.mem_bw" } },
	{ "pim-bw+pim-ops", "PIM bandwidth and compute together",
	  { "npu-pim", "npu-pim" }, { "pim.mem_bw", "pim.matrix_ops" } },
	{ "npu-bw+gpu-bw", "NPU bandwidth up, GPU's down by as much",
	  { "npu-pim", "gpu" }, { "npu.mem_bw", "gpu.mem_bw" } },
};
#define N_WIT_CONSTS (sizeof wit_consts / sizeof *wit_consts)
#define WIT_RANGE 64.0     /* factors searched: [1/64, 64] */
#define WIT_SAMPLES 9
#define WIT_STEPS 20

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
	int inverse[2];            /* the second key moves the other way */
	struct result *res;
	int den_cached;
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
	/* the denominator's preset takes no override: run it once */
	int den_moves = 0;
	for (int i = 0; i < 2 && e->co->key[i]; i++)
		den_moves |= !strcmp(e->co->preset[i],
		                     configs[e->ra->den].hw[F_PAPER]);
	unsigned only[2] = { (unsigned)e->ra->num, (unsigned)e->ra->den };
	size_t n_only = den_moves || !e->den_cached ? 2 : 1;
	const uint64_t runs0 = r->runs;
	int rc = run_trace_all(r, e->trace, e->res, only, n_only, err, errlen);
	r->n_ovr = 0;
	e->runs += r->runs - runs0;
	if (rc < 0)
		return NAN;
	e->den_cached = !den_moves;
	return mean_ratio(r, e->res, e->ra->num, e->ra->den, e->ra->m);
}

static int run_what_it_takes(struct repro *r, const char *const *ratios,
                             size_t n_ratios, const char *const *consts,
                             size_t n_consts, char *err, size_t errlen)
{
	struct workload w;
	if (parse_workload(&w, "7b-instruct:sequences=8:tokens=512", err,
	                   errlen) < 0)
		return -EINVAL;
	if (r->n_workloads)
		w = r->workloads[0];
	struct db *keep_db = r->db;
	r->db = NULL;            /* thousands of probes: not stored */
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
	out(r, "## What it would take\n\nFor each of the paper's ratios, the "
	    "value each hardware constant of the paper's platform would need, "
	    "changed alone (or two at once, last rows), for the model to reach "
	    "the paper's figure. Workload: %s; pairs: ", w.label);
	for (size_t p = 0; p < r->n_pairs; p++)
		out(r, "%s%s", p ? ", " : "", r->pairs[p]);
	out(r, "; every drafter; ratios are means over them. Factors searched "
	    "in [1/%g, %g] of the stated value, %d log-spaced samples, then "
	    "bisection where the response is monotone between the bracketing "
	    "samples. Where two constants move, both scale by the factor "
	    "(npu-bw+gpu-bw: the GPU's by its inverse); stated and needed "
	    "are the first one's.\n\n| ratio | now | paper | constant | stated | needed | "
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
			struct wit_eval e = { r, t, ra, co, { 0, 0 }, { 0, 0 }, res,
			                      0, 0 };
			for (int k = 0; k < 2 && co->key[k]; k++) {
				rc = stated_value(co->preset[k], co->key[k],
				                  &e.stated[k], err, errlen);
				e.inverse[k] = k == 1 && !strcmp(co->name,
				                                 "npu-bw+gpu-bw");
			}
			if (rc)
				break;
			double fs[WIT_SAMPLES], vs[WIT_SAMPLES];
			for (int k = 0; k < WIT_SAMPLES && !rc; k++) {
				fs[k] = pow(WIT_RANGE, 2.0 * k / (WIT_SAMPLES - 1) - 1);
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
				if ((vs[k - 1] - ra->paper) * (vs[k] - ra->paper) <= 0)
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
					snprintf(note, sizeof note, "no effect (%.3g "
					         "throughout)", now);
				else
					snprintf(note, sizeof note, "not reachable in "
					         "[1/%g, %g]x: %.3g to %.3g", WIT_RANGE,
					         WIT_RANGE, lo, hi);
			} else {
				/* bisect in log space between the samples */
				double fl = fs[b - 1], fh = fs[b], vl = vs[b - 1];
				for (int it = 0; it < WIT_STEPS && !rc; it++) {
					const double fm = sqrt(fl * fh);
					const double vm = wit_ratio_at(&e, fm, err,
					                               errlen);
					if (isnan(vm) && err[0]) {
						rc = -EINVAL;
						break;
					}
					if ((vl - ra->paper) * (vm - ra->paper) <= 0) {
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
				snprintf(note, sizeof note, "%s",
				         up && down ? "not monotone: first crossing"
				                    : "monotone: bisection");
			}
			probes += e.runs;
			char nw[24], pp[16];
			snprintf(nw, sizeof nw, "%.4gx", now);
			out(r, "| %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n",
			    ra->name, nw,
			    fx(pp, sizeof pp, ra->paper), co->name, co->what, stated,
			    needed, factor, note);
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
	r->db = keep_db;
	return rc;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: ahasd-repro [options] [TRACE...]\n"
"\n"
"Reproduce the AHASD paper's study: every captured trace x model pair x\n"
"drafter x configuration, each run stored in one results database; print\n"
"the paper's tables with our values next to the paper's.\n"
"\n"
"  TRACE...             traces to use (default: every captured, non-\n"
"                       synthetic *.msgpack in --traces-dir)\n"
"      --traces-dir D   default: the source tree's traces/ when run from\n"
"                       the build tree\n"
"      --pair D:T       model-preset pair, repeatable (default:\n"
"                       opt-1.3b:opt-6.7b, llama2-7b:llama2-13b,\n"
"                       palm-8b:palm-30b)\n"
"  -d, --drafter NAME   drafter plugin, repeatable (default: specdecpp,\n"
"                       svip, adaedl, banditspec)\n"
"      --workload P[:k=v...]  a workload profile's synthetic stream as\n"
"                       traces of their own (repeatable; default, with\n"
"                       discovered traces: 7b-instruct); --no-workload\n"
"      --workload-sweep KEY=V,V..  also the study on the (first) workload\n"
"                       with one statistic at each value (repeatable)\n"
"      --what-it-takes  instead of the grid: for each of the paper's\n"
"                       ratios, the value of each hardware constant at\n"
"                       which the model reaches it (--wit-ratio TEXT,\n"
"                       --wit-constant NAME narrow it; see --list)\n"
"      --family F       paper, artifact or edge (repeatable; default all\n"
"                       three): the hardware the grid runs on\n"
"      --sweep NAME[=V,V..]  also run a sensitivity sweep of +tvc\n"
"                       (repeatable; 'all' for every sweep; --list\n"
"                       names them)\n"
"      --db FILE        results database (default ahasd-repro.db)\n"
"      --no-db          do not store runs\n"
"  -o, --out FILE       also write the tables as Markdown to FILE\n"
"  -q, --quiet          do not print the tables\n"
"      --list           list configurations and sweeps\n"
"  -h, --help           this text\n");
}

static void list_all(void)
{
	printf("configurations:\n");
	for (size_t c = 0; c < N_CONFIGS; c++)
		printf("  %-14s hw=%s|%s|%s policy=%s %s%s%s%s%s%s\n    %s\n",
		       configs[c].name, configs[c].hw[F_PAPER],
		       configs[c].hw[F_ARTIFACT], configs[c].hw[F_EDGE],
		       configs[c].policy, configs[c].params,
		       *configs[c].params ? " " : "",
		       *configs[c].hw_params ? "hw." : "",
		       configs[c].hw_params,
		       configs[c].drafter ? " drafter=" : "",
		       configs[c].drafter ? configs[c].drafter : "",
		       configs[c].what);
	printf("what-it-takes constants (--wit-constant):\n");
	for (size_t c = 0; c < N_WIT_CONSTS; c++)
		printf("  %-15s %s\n", wit_consts[c].name, wit_consts[c].what);
	printf("what-it-takes ratios (--wit-ratio matches a part):\n");
	for (size_t c = 0; c < N_WIT_RATIOS; c++)
		printf("  %s (paper %.3g)\n", wit_ratios[c].name,
		       wit_ratios[c].paper);
	printf("hardware families (--family):\n");
	for (int f = 0; f < N_FAMILIES; f++)
		printf("  %-9s %s\n", families[f].name, families[f].what);
	printf("sweeps (of +tvc):\n");
	for (size_t s = 0; s < N_SWEEPS; s++)
		printf("  %-10s %s = %s\n    %s\n", sweeps[s].name,
		       sweeps[s].key, sweeps[s].values, sweeps[s].what);
}


struct sweep_req {
	const struct sweep *sw;
	const char *values;
};

int main(int argc, char **argv)
{
	enum { O_DB = 256, O_NODB, O_PAIR, O_SWEEP, O_LIST, O_TDIR, O_FAMILY,
	       O_WORKLOAD, O_NO_WORKLOAD, O_WSWEEP, O_WIT, O_WIT_RATIO,
	       O_WIT_CONST };
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, O_DB },
		{ "no-db", no_argument, NULL, O_NODB },
		{ "pair", required_argument, NULL, O_PAIR },
		{ "drafter", required_argument, NULL, 'd' },
		{ "sweep", required_argument, NULL, O_SWEEP },
		{ "family", required_argument, NULL, O_FAMILY },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "no-workload", no_argument, NULL, O_NO_WORKLOAD },
		{ "workload-sweep", required_argument, NULL, O_WSWEEP },
		{ "what-it-takes", no_argument, NULL, O_WIT },
		{ "wit-ratio", required_argument, NULL, O_WIT_RATIO },
		{ "wit-constant", required_argument, NULL, O_WIT_CONST },
		{ "traces-dir", required_argument, NULL, O_TDIR },
		{ "out", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, O_LIST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct repro r;
	struct sweep_req req[N_SWEEPS * 4];
	size_t n_req = 0;
	const char *out_path = NULL, *tdir = NULL;
	char err[ERRLEN], *mdbuf = NULL;
	size_t mdlen = 0;
	int status = 1, no_db = 0, c, no_workload = 0, wit = 0;
	const char *wsweep[MAX_SWEEP_VALUES], *wit_r[16], *wit_c[16];
	size_t n_wsweep = 0, n_wit_r = 0, n_wit_c = 0;
	unsigned fam_mask = 0;

	r.db_path = "ahasd-repro.db";
	while ((c = getopt_long(argc, argv, "d:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case O_DB: r.db_path = optarg; break;
		case O_NODB: no_db = 1; break;
		case O_TDIR: tdir = optarg; break;
		case O_WORKLOAD:
			if (r.n_workloads == MAX_WORKLOADS ||
			    parse_workload(&r.workloads[r.n_workloads], optarg, err,
			                   sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: --workload %s: %s\n",
				        optarg, r.n_workloads == MAX_WORKLOADS
				                 ? "too many" : err);
				return 2;
			}
			r.n_workloads++;
			break;
		case O_NO_WORKLOAD: no_workload = 1; break;
		case O_WSWEEP:
			if (n_wsweep == MAX_SWEEP_VALUES) {
				fprintf(stderr, "ahasd-repro: too many "
				        "--workload-sweep\n");
				return 2;
			}
			wsweep[n_wsweep++] = optarg;
			break;
		case O_WIT: wit = 1; break;
		case O_WIT_RATIO:
		case O_WIT_CONST:
			if ((c == O_WIT_RATIO ? n_wit_r : n_wit_c) == 16) {
				fprintf(stderr, "ahasd-repro: too many filters\n");
				return 2;
			}
			if (c == O_WIT_RATIO)
				wit_r[n_wit_r++] = optarg;
			else
				wit_c[n_wit_c++] = optarg;
			break;
		case O_FAMILY: {
			int f = 0;
			while (f < N_FAMILIES && strcmp(families[f].name, optarg))
				f++;
			if (f == N_FAMILIES) {
				fprintf(stderr, "ahasd-repro: --family '%s': expected "
				        "paper, artifact or edge\n", optarg);
				return 2;
			}
			fam_mask |= 1u << f;
			break;
		}
		case O_PAIR:
			if (r.n_pairs == MAX_PAIRS || !strchr(optarg, ':')) {
				fprintf(stderr, "ahasd-repro: --pair '%s': "
				        "expected DRAFT:TARGET (max %d)\n",
				        optarg, MAX_PAIRS);
				return 2;
			}
			r.pairs[r.n_pairs++] = optarg;
			break;
		case 'd':
			if (r.n_drafters == MAX_DRAFTERS) {
				fprintf(stderr, "ahasd-repro: too many drafters\n");
				return 2;
			}
			r.drafters[r.n_drafters++] = optarg;
			break;
		case O_SWEEP: {
			char *eq = strchr(optarg, '=');
			size_t nl = eq ? (size_t)(eq - optarg) : strlen(optarg);
			int all = !strcmp(optarg, "all"), found = 0;
			for (size_t s = 0; s < N_SWEEPS; s++) {
				if (!all && (strlen(sweeps[s].name) != nl ||
				             strncmp(sweeps[s].name, optarg, nl)))
					continue;
				found = 1;
				if (n_req < sizeof req / sizeof *req)
					req[n_req++] = (struct sweep_req){
						&sweeps[s],
						eq ? eq + 1 : sweeps[s].values };
			}
			if (!found) {
				fprintf(stderr, "ahasd-repro: unknown sweep "
				        "'%s' (see --list)\n", optarg);
				return 2;
			}
			break;
		}
		case 'o': out_path = optarg; break;
		case 'q': r.quiet = 1; break;
		case O_LIST: list_all(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!r.n_pairs)
		for (size_t i = 0; i < 3; i++)
			r.pairs[r.n_pairs++] = default_pairs[i];
	if (!r.n_drafters)
		for (size_t i = 0; i < 4; i++)
			r.drafters[r.n_drafters++] = default_drafters[i];

	/* models */
	for (size_t p = 0; p < r.n_pairs; p++) {
		char name[256];
		const char *colon = strchr(r.pairs[p], ':');
		snprintf(name, sizeof name, "%.*s", (int)(colon - r.pairs[p]),
		         r.pairs[p]);
		if (model_preset_load(&r.models[p][0], name, err, sizeof err) < 0 ||
		    model_preset_load(&r.models[p][1], colon + 1, err,
		                      sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	}
	/* traces */
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			if (r.n_traces == MAX_TRACES) {
				fprintf(stderr, "ahasd-repro: too many traces\n");
				goto done;
			}
			if (trace_data_load(&r.traces[r.n_traces], argv[i], 0,
			                    err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: %s\n", err);
				goto done;
			}
			r.n_traces++;
		}
	} else {
		char dir[PATH_MAX];
		if (!tdir) {
			if (!util_exe_in_build_tree()) {
				fprintf(stderr, "ahasd-repro: give traces or "
				        "--traces-dir\n");
				goto done;
			}
			snprintf(dir, sizeof dir, "%s/traces", AHASD_SOURCE_ROOT);
			tdir = dir;
		}
		if (discover_traces(&r, tdir, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	}
	/* the synthetic workloads: by default, beside the discovered captures,
	 * the 7B-class profile */
	if (!r.n_workloads && !no_workload && optind >= argc) {
		if (parse_workload(&r.workloads[0], "7b-instruct", err,
		                   sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		r.n_workloads = 1;
	}
	if (no_workload)
		r.n_workloads = 0;
	for (size_t w = 0; w < r.n_workloads; w++) {
		if (r.n_traces == MAX_TRACES) {
			fprintf(stderr, "ahasd-repro: too many traces\n");
			goto done;
		}
		if (trace_data_profile(&r.traces[r.n_traces], &r.workloads[w],
		                       (int)w + 1, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		r.n_traces++;
	}
	if (!r.n_traces) {
		fprintf(stderr, "ahasd-repro: no traces and no workload\n");
		goto done;
	}
	if (!no_db && db_open(&r.db, r.db_path, err, sizeof err) < 0) {
		fprintf(stderr, "ahasd-repro: %s\n", err);
		goto done;
	}
	if (no_db)
		r.db_path = NULL;
	if (!fam_mask)
		fam_mask = (1u << N_FAMILIES) - 1;
	if (!(fam_mask & 1u)) {
		fprintf(stderr, "ahasd-repro: the paper family is always run "
		        "(the tables compare with it)\n");
		fam_mask |= 1u;
	}
	r.n_fam = 0;
	while (r.n_fam < N_FAMILIES && (fam_mask >> r.n_fam))
		r.n_fam++;
	/* every filter and sweep value is checked before the first run */
	for (size_t i = 0; i < n_wit_c; i++) {
		size_t k = 0;
		while (k < N_WIT_CONSTS && strcmp(wit_consts[k].name, wit_c[i]))
			k++;
		if (k == N_WIT_CONSTS) {
			fprintf(stderr, "ahasd-repro: --wit-constant %s: unknown "
			        "(see --list)\n", wit_c[i]);
			goto done;
		}
	}
	for (size_t i = 0; i < n_wsweep; i++) {
		char key[64], vbuf[256];
		const char *eq = strchr(wsweep[i], '=');
		struct wl_profile pp = r.n_workloads ? r.workloads[0].prof
		                                     : *wl_profile_at(0);
		if (!eq || (size_t)(eq - wsweep[i]) >= sizeof key) {
			fprintf(stderr, "ahasd-repro: --workload-sweep %s: expected "
			        "KEY=V,V,...\n", wsweep[i]);
			goto done;
		}
		memcpy(key, wsweep[i], (size_t)(eq - wsweep[i]));
		key[eq - wsweep[i]] = '\0';
		snprintf(vbuf, sizeof vbuf, "%s", eq + 1);
		for (char *v = strtok(vbuf, ","); v; v = strtok(NULL, ",")) {
			struct wl_profile q = pp;
			if (wl_profile_set(&q, key, v, err, sizeof err) < 0 ||
			    wl_profile_finish(&q, err, sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: --workload-sweep: %s\n",
				        err);
				goto done;
			}
		}
	}
	r.grid = calloc(N_FAMILIES * cells(&r) * N_CONFIGS, sizeof *r.grid);
	r.md = open_memstream(&mdbuf, &mdlen);
	if (!r.grid || !r.md) {
		fprintf(stderr, "ahasd-repro: out of memory\n");
		goto done;
	}
	if (wit) {
		/* the search alone */
		out(&r, "# AHASD reproduction: what it would take\n\nGenerated "
		    "by `ahasd-repro --what-it-takes` (ahasd-replay %s); read "
		    "with [REPRODUCTION.md](REPRODUCTION.md).\n\n",
		    AHASD_VERSION);
		r.fam = F_PAPER;
		if (run_what_it_takes(&r, wit_r, n_wit_r, wit_c, n_wit_c, err,
		                      sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
		goto write;
	}

	struct timespec w0, w1;
	clock_gettime(CLOCK_MONOTONIC, &w0);
	for (r.fam = 0; r.fam < N_FAMILIES; r.fam++) {
		if (!(fam_mask & (1u << r.fam)))
			continue;
		for (size_t t = 0; t < r.n_traces; t++)
		for (size_t p = 0; p < r.n_pairs; p++)
		for (size_t d = 0; d < r.n_drafters; d++)
		for (size_t k = 0; k < N_CONFIGS; k++) {
			/* a configuration with its own drafter is one run per
			 * (trace, pair), shared by the cell's drafters */
			if (configs[k].drafter && d > 0) {
				*grid_at(&r, t, p, d, k) = *grid_at(&r, t, p, 0, k);
				continue;
			}
			if (run_cell(&r, t, p, d, &configs[k], NULL,
			             grid_at(&r, t, p, d, k), err,
			             sizeof err) < 0) {
				fprintf(stderr, "ahasd-repro: %s\n", err);
				goto done;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double wall = (double)(w1.tv_sec - w0.tv_sec) +
	              (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;

	out(&r, "# AHASD reproduction: tables\n\n"
	    "Generated by `ahasd-repro` (ahasd-replay %s); how the numbers "
	    "are obtained and why they differ from the paper: "
	    "[REPRODUCTION.md](REPRODUCTION.md).\n\n", AHASD_VERSION);
	table_setup(&r, wall);
	table_families(&r, fam_mask);
	const unsigned gm = groups_present(&r);
	for (r.wgroup = 0; r.wgroup < 32; r.wgroup++) {
		if (!(gm & (1u << r.wgroup)))
			continue;
		for (r.fam = 0; r.fam < N_FAMILIES; r.fam++) {
			if (!(fam_mask & (1u << r.fam)))
				continue;
			out(&r, "# Hardware: %s, workload: %s\n\n%s.\n\n",
			    families[r.fam].name, group_name(&r, r.wgroup),
			    families[r.fam].what);
			table_ablation(&r);
			table_headline(&r);
			table_lpddr5(&r);
			table_acceptance(&r);
			table_share(&r);
		}
	}
	r.fam = F_PAPER;
	/* sensitivity on the first synthetic workload when there is one:
	 * the 7B-class statistics are the closer to the paper's pairs */
	r.wgroup = gm & 2u ? 1 : 0;
	if (n_req)
		out(&r, "# Sensitivity (paper hardware)\n\n");
	for (size_t i = 0; i < n_req; i++)
		if (run_sweep(&r, req[i].sw, req[i].values, err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	if (n_wsweep)
		out(&r, "# Workload sweeps (paper hardware)\n\n");
	for (size_t i = 0; i < n_wsweep; i++)
		if (run_workload_sweep(&r, wsweep[i], err, sizeof err) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", err);
			goto done;
		}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	double total = (double)(w1.tv_sec - w0.tv_sec) +
	               (double)(w1.tv_nsec - w0.tv_nsec) * 1e-9;
	out(&r, "Total: %llu runs in %.1f s.\n", (unsigned long long)r.runs,
	    total);
write:
	if (fflush(r.md)) {
		fprintf(stderr, "ahasd-repro: out of memory\n");
		goto done;
	}
	if (!r.quiet)
		fwrite(mdbuf, 1, mdlen, stdout);
	if (out_path) {
		struct outfile *of = NULL;
		char oerr[1024];

		if (outfile_open(&of, out_path, oerr, sizeof oerr) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", oerr);
			goto done;
		}
		fwrite(mdbuf, 1, mdlen, outfile_stream(of));
		if (outfile_commit(&of, oerr, sizeof oerr) < 0) {
			fprintf(stderr, "ahasd-repro: %s\n", oerr);
			goto done;
		}
	}
	status = 0;
done:
	if (r.md)
		fclose(r.md);
	free(mdbuf);
	free(r.grid);
	db_close(&r.db);
	for (size_t t = 0; t < r.n_traces; t++)
		trace_data_free(&r.traces[t]);
	for (size_t p = 0; p < r.n_pairs; p++) {
		model_preset_clear(&r.models[p][0]);
		model_preset_clear(&r.models[p][1]);
	}
	return status;
}
