/* repro_study.c - the study's hardware families, configurations and
 * sweeps; its traces and workloads; and its runs (each one through
 * run_execute). */
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
#include "models.h"
#include "run.h"
#include "run_pool.h"
#include "sha256.h"
#include "util.h"

const struct family families[N_FAMILIES] = {
	{ "paper",
	  "the paper's stated hardware (npu-pim, npu-lpddr5, gpu, "
	  "gpu-pim)",
	  DEFAULT_MAXD, DEFAULT_MAXD, "" },
	{ "artifact",
	  "the authors' released main-family configuration "
	  "(artifact-*: a 4 x 128^2 NPU on HBM2, PIM on every second channel; "
	  "max_draft_length 4)",
	  4, 4, "" },
	{ "edge",
	  "the authors' released edge family (artifact-edge-*: one "
	  "NPU channel and one PIM channel; max_draft_length 4, 6 for AHASD; "
	  "edc_h_max 6)",
	  4, 6, "h_max=6" },
};

#define PIM_HW                                                     \
	{                                                          \
		"npu-pim", "artifact-ahasd", "artifact-edge-ahasd" \
	}
#define PIM_HW                                                     \
	{                                                          \
		"npu-pim", "artifact-ahasd", "artifact-edge-ahasd" \
	}
const struct config configs[N_CONFIGS] = {
	{ "gpu-only",
	  { "gpu", "artifact-gpu-only", "artifact-edge-gpu" },
	  "sync",
	  "",
	  "",
	  NULL,
	  { NULL },
	  0,
	  "GPU-only: RTX 4090 Laptop, drafting and verification alternate" },
	{ "npu-lpddr5",
	  { "npu-lpddr5", "artifact-npu-only", "artifact-edge-npu-only" },
	  "sync",
	  "",
	  "",
	  NULL,
	  { NULL },
	  0,
	  "NPU + plain LPDDR5: both models on the NPU, alternating" },
	{ "specpim",
	  { "gpu-pim", "artifact-specpim", "artifact-edge-specpim" },
	  "sync",
	  "",
	  "",
	  "fixed",
	  { "k=8", "k=4", "k=4" },
	  0,
	  "SpecPIM: GPU + PIM, each operator on one device (a fixed mapping), "
	  "fixed draft length (8: the AHASD authors' SpecPIM; 4 in their "
	  "released files)" },
	{ "npu-pim-sync",
	  PIM_HW,
	  "sync",
	  "",
	  "",
	  NULL,
	  { NULL },
	  0,
	  "NPU + PIM operator-level synchronous (Fig. 3): draft model on the "
	  "PIM, target on the NPU, each waiting" },
	{ "best-case-split",
	  PIM_HW,
	  "sync",
	  "",
	  "sync_placement=best",
	  NULL,
	  { NULL },
	  0,
	  "best-case split (not the paper's): every operator where it is "
	  "fastest at every step" },
	{ "npu-pim-async",
	  PIM_HW,
	  "ahasd",
	  "edc=0 tvc=0",
	  "aau=0",
	  NULL,
	  { NULL },
	  1,
	  "NPU + LPDDR5-PIM, task-level async (naive look-ahead), no AAU" },
	{ "+aau",
	  PIM_HW,
	  "ahasd",
	  "edc=0 tvc=0",
	  "aau=1",
	  NULL,
	  { NULL },
	  1,
	  "+ Attention Algorithm Unit in the PIM" },
	{ "+edc",
	  PIM_HW,
	  "ahasd",
	  "edc=1 tvc=0",
	  "aau=1",
	  NULL,
	  { NULL },
	  1,
	  "+ entropy-history-aware drafting control" },
	{ "+tvc",
	  PIM_HW,
	  "ahasd",
	  "edc=1 tvc=1",
	  "aau=1",
	  NULL,
	  { NULL },
	  1,
	  "+ time-aware pre-verification control (full AHASD)" },
};
#undef PIM_HW

/* The paper's ablation (GPU-only = 1.0): throughput, energy efficiency. */
const double paper_ablation[4][2] = {
	{ 2.2, 1.9 },
	{ 2.7, 2.6 },
	{ 3.4, 4.5 },
	{ 3.8, 5.2 },
};

const char *const default_pairs[3] = {
	"opt-1.3b:opt-6.7b",
	"llama2-7b:llama2-13b",
	"palm-8b:palm-30b",
};
const char *const default_drafters[4] = {
	"specdecpp",
	"svip",
	"adaedl",
	"banditspec",
};

const struct sweep sweeps[] = {
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
const size_t n_sweeps = sizeof sweeps / sizeof *sweeps;
_Static_assert(sizeof sweeps / sizeof *sweeps <= MAX_SWEEPS, "MAX_SWEEPS");

int in_group(const struct repro *r, size_t t)
{
	return r->traces[t].group == r->wgroup;
}

const char *group_name(const struct repro *r, int g)
{
	return g == 0 ? "captured" : r->workloads[g - 1].label;
}

size_t cell(const struct repro *r, size_t t, size_t p, size_t d)
{
	return (t * r->n_pairs + p) * r->n_drafters + d;
}

size_t cells(const struct repro *r)
{
	return r->n_traces * r->n_pairs * r->n_drafters;
}

/* A result of the current family (r->fam). */
struct result *grid_at(struct repro *r, size_t t, size_t p, size_t d, size_t c)
{
	return &r->grid[((size_t)r->fam * cells(r) + cell(r, t, p, d)) *
	                        N_CONFIGS +
	                c];
}

void trace_data_free(struct trace_data *t)
{
	trace_mem_free(&t->mem);
}

/* A workload's sequences, generated into memory. */
int trace_data_profile(struct trace_data *t, const struct workload *w,
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
int parse_workload(struct workload *w, const char *spec, char *err,
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
			snprintf(err, errlen,
			         "workload '%s': '%s' is not "
			         "key=value",
			         spec, kv);
			return -EINVAL;
		}
		*eq = '\0';
		if (wl_profile_set(&w->prof, kv, eq + 1, err, errlen) < 0)
			return -EINVAL;
		if (pos < sizeof w->label)
			pos += (size_t)snprintf(w->label + pos,
			                        sizeof w->label - pos, " %s=%s",
			                        kv, eq + 1);
	}
	return wl_profile_finish(&w->prof, err, errlen);
}

int trace_data_load(struct trace_data *t, const char *path, int skip_synthetic,
                    char *err, size_t errlen)
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
int discover_traces(struct repro *r, const char *dir, char *err, size_t errlen)
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

/* The runs.label of a run of family fam. */
static void cell_label(const struct repro *r, int fam, const struct config *cf,
                       const struct point *pt, char *label, size_t len)
{
	if (pt)
		snprintf(label, len, "repro-sweep %s=%s %s", pt->sw->name,
		         pt->value, cf->name);
	else if (r->label_prefix)
		snprintf(label, len, "%s %s", r->label_prefix, cf->name);
	else if (fam != F_PAPER)
		snprintf(label, len, "repro %s %s", families[fam].name,
		         cf->name);
	else
		snprintf(label, len, "repro %s", cf->name);
}

/* One run: trace x pair x drafter x configuration (x sweep point). */
int run_cell(struct repro *r, size_t ti, size_t pi, size_t di,
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

	cell_label(r, r->fam, cf, pt, label, sizeof label);
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
		.watch = r->watch,
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
	return 0;
}

/* ---- the runs, apart (run_pool.h) ---- */

struct cells {
	struct repro *r;
	const struct cell_job *jobs;
	char label[160], config[512];
};

/* In the worker: its copy of the study, as it was at the fork. */
static int cells_run(void *ctx, struct run_job *job)
{
	struct cells *c = ctx;
	const struct cell_job *j = &c->jobs[job->index];
	struct repro *r = c->r;
	r->fam = j->fam;
	r->db = job->db;
	r->watch = job->watch;
	return run_cell(r, j->t, j->p, j->d, &configs[j->k], j->pt, job->out,
	                job->err, job->errlen);
}

static void cells_describe(void *ctx, size_t i, struct db_failure *f)
{
	struct cells *c = ctx;
	const struct cell_job *j = &c->jobs[i];
	const struct repro *r = c->r;
	const struct config *cf = &configs[j->k];
	cell_label(r, j->fam, cf, j->pt, c->label, sizeof c->label);
	snprintf(c->config, sizeof c->config, "pair=%s%s%s%s%s%s%s",
	         r->pairs[j->p], *cf->params ? " " : "", cf->params,
	         *cf->hw_params ? " hw." : "", cf->hw_params,
	         j->pt ? " sweep " : "", j->pt ? j->pt->sw->key : "");
	if (j->pt) {
		size_t l = strlen(c->config);
		snprintf(c->config + l, sizeof c->config - l, "=%s",
		         j->pt->value);
	}
	f->label = c->label;
	f->trace_path = r->traces[j->t].path;
	f->hw_preset = cf->hw[j->fam];
	f->policy = cf->policy;
	f->drafter = cf->drafter ? cf->drafter : r->drafters[j->d];
	f->config = c->config;
}

static void cells_done(void *ctx, size_t i, const struct run_outcome *o)
{
	struct cells *c = ctx;
	const struct cell_job *j = &c->jobs[i];
	struct repro *r = c->r;
	r->tried++;
	if (o->ok) {
		*j->res = *(const struct result *)o->out;
		r->runs++;
		progress_step(r->pr, 1, 0);
		return;
	}
	memset(j->res, 0, sizeof *j->res);
	r->failed++;
	progress_clear(r->pr);
	fprintf(stderr, "ahasd-repro: %s [%s, %s, %s, %s%s%s]\n", o->message,
	        r->traces[j->t].name, r->pairs[j->p],
	        configs[j->k].drafter ? configs[j->k].drafter
	                              : r->drafters[j->d],
	        configs[j->k].name, j->fam != F_PAPER ? ", " : "",
	        j->fam != F_PAPER ? families[j->fam].name : "");
	progress_step(r->pr, 1, 1);
}

int run_cells(struct repro *r, const struct cell_job *jobs, size_t n, char *err,
              size_t errlen)
{
	struct cell_job *mine = NULL;
	if (r->shard.n > 1) {
		/* this shard's runs: k counts every run the study plans, in
		 * the order it plans them, whichever shard runs it */
		size_t k = 0;
		mine = calloc(n ? n : 1, sizeof *mine);
		if (!mine) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			if (sweep_in_shard(&r->shard, r->job_seq++))
				mine[k++] = jobs[i];
		jobs = mine;
		n = k;
	} else {
		r->job_seq += n;
	}
	if (r->pr)
		progress_add(r->pr, n);
	struct cells c = { .r = r, .jobs = jobs };
	struct run_pool pool = {
		.db_path = r->db_path,
		.timeout_s = r->run_timeout,
		.workers = r->workers,
		.out_size = sizeof(struct result),
		.ctx = &c,
		.run = cells_run,
		.describe = cells_describe,
		.done = cells_done,
	};
	const int rc = run_pool_exec(&pool, n, err, errlen);
	free(mine);
	return rc;
}

/* Append a workload's generated trace as trace r->n_traces (group g). */
int push_workload(struct repro *r, const struct workload *w, int g, char *err,
                  size_t errlen)
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
 * SpecPIM's fixed drafter once per pair. A run that fails leaves its
 * result not done (run_cells). */
int run_trace_all(struct repro *r, size_t t, struct result *res,
                  const unsigned *only, size_t n_only, char *err, size_t errlen)
{
	struct cell_job *jobs = calloc(r->n_pairs * r->n_drafters * N_CONFIGS,
	                               sizeof *jobs);
	size_t n = 0;
	if (!jobs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t p = 0; p < r->n_pairs; p++)
		for (size_t d = 0; d < r->n_drafters; d++)
			for (size_t k = 0; k < N_CONFIGS; k++) {
				int want = !n_only;
				for (size_t i = 0; i < n_only; i++)
					want |= only[i] == k;
				if (want && !(configs[k].drafter && d > 0))
					jobs[n++] = (struct cell_job){
						r->fam,
						t,
						p,
						d,
						k,
						NULL,
						&res[(p * r->n_drafters + d) * N_CONFIGS + k]
					};
			}
	int rc = run_cells(r, jobs, n, err, errlen);
	free(jobs);
	/* a configuration with its own drafter: its run of drafter 0 */
	for (size_t p = 0; p < r->n_pairs && rc == 0; p++)
		for (size_t d = 1; d < r->n_drafters; d++)
			for (size_t k = 0; k < N_CONFIGS; k++) {
				int want = !n_only;
				for (size_t i = 0; i < n_only; i++)
					want |= only[i] == k;
				if (want && configs[k].drafter)
					res[(p * r->n_drafters + d) *
					            N_CONFIGS +
					    k] = res[(p * r->n_drafters) *
					                     N_CONFIGS +
					             k];
			}
	return rc;
}

/* Mean over (pair, drafter) of res[num] / res[den] for a metric. */
double mean_ratio(const struct repro *r, const struct result *res, size_t num,
                  size_t den, enum metric m)
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

/* ---- statistics over cells ---- */

double metric_of(const struct result *x, enum metric m)
{
	switch (m) {
	case M_TOK_S: return x->tok_s;
	case M_TOK_J: return x->tok_j;
	default: return x->accept;
	}
}

/* Ratio num/den of a metric for one cell; NaN if missing. */
double cell_ratio(const struct result *num, const struct result *den,
                  enum metric m)
{
	if (!num->done || !den->done || metric_of(den, m) <= 0)
		return NAN;
	return metric_of(num, m) / metric_of(den, m);
}
