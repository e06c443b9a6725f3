/* repro.h - ahasd-repro's parts: the study's tables of configurations
 * and sweeps and its runs (repro_study.c), the Markdown tables
 * (repro_tables.c), sweeps, workload sweeps and what-it-takes
 * (repro_sweeps.c), the command line (ahasd-repro.c). Private to the program. */
#ifndef AHASD_REPRO_H
#define AHASD_REPRO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "hw.h"
#include "progress.h"
#include "run.h"
#include "sweep.h"
#include "trace.h"
#include "trace_mem.h"
#include "workload.h"

#define ERRLEN           1024
#define MAX_TRACES       32
#define MAX_PAIRS        8
#define MAX_DRAFTERS     8
#define MAX_SWEEP_VALUES 12
#define MAX_KV           8
#define MAX_OVR          4 /* --what-it-takes: constants probed at once */
#define DEFAULT_QCAP     32
#define DEFAULT_MAXD     64
#define SEED             1

/* ---- hardware families: the paper's stated platform, and the AHASD
 * authors' released configurations (main and edge; replay/presets/
 * artifact-*.ini cite every value) ---- */

enum { F_PAPER = 0, F_ARTIFACT, F_EDGE, N_FAMILIES };

struct family {
	const char *name;
	const char *what;
	uint32_t max_draft;       /* cap on a batch */
	uint32_t max_draft_ahasd; /* ... in the AHASD configurations */
	const char *ahasd_params; /* extra policy parameters of AHASD */
};

/* ---- the named configurations ---- */

struct config {
	const char *name;
	const char *hw[N_FAMILIES]; /* hardware preset per family */
	const char *policy;         /* policy plugin */
	const char *params;         /* policy parameters "k=v k=v" */
	const char *hw_params;      /* hardware overrides "k=v k=v" */
	const char *drafter;        /* NULL: the cell's drafter */
	const char *drafter_params[N_FAMILIES];
	int ahasd;        /* gets the family's AHASD settings */
	const char *what; /* the paper's row */
};

/* The configurations, in table order (configs[] in repro_study.c). */
enum {
	C_GPU = 0,
	C_LPDDR5,
	C_SPECPIM,
	C_SYNC,
	C_BEST,
	C_ASYNC,
	C_AAU,
	C_EDC,
	C_TVC
};
#define N_CONFIGS ((size_t)C_TVC + 1)
extern const struct config configs[N_CONFIGS];
extern const struct family families[N_FAMILIES];
/* The paper's ablation (GPU-only = 1.0): throughput, energy efficiency. */
extern const double paper_ablation[4][2];
extern const char *const default_pairs[3];
extern const char *const default_drafters[4];

/* ---- sensitivity sweeps (issue 4, item 6): each re-runs +tvc ---- */

enum sweep_kind { SW_HW, SW_POLICY, SW_QCAP };

struct sweep {
	const char *name;
	enum sweep_kind kind;
	const char *key;    /* hw key or policy parameter */
	const char *values; /* default values, comma-separated */
	const char *what;
};
extern const struct sweep sweeps[];
extern const size_t n_sweeps;
#define N_SWEEPS   n_sweeps
#define MAX_SWEEPS 32

/* One value of one sweep. */
struct point {
	const struct sweep *sw;
	const char *value;
};

/* ---- in-memory traces ---- */

struct trace_data {
	int group; /* 0: captured; g > 0: workload g - 1 */
	char path[PATH_MAX];
	char name[192]; /* file name without directory */
	char sha[65];
	char draft[TRACE_NAME_MAX], target[TRACE_NAME_MAX];
	uint32_t lookahead;
	int sampled;
	struct trace_mem mem; /* the sequences */
};

struct result {
	int done;
	double tok_s, tok_j, accept, time_s, energy_j;
	double share_min, share_mean, share_max; /* the PIM's share (sync) */
	double dev_w[HW_MAX_DEV];                /* mean power per device */
	char dev[HW_MAX_DEV][16];
	double preverified, drafted;
	int64_t run_id;
};

/* A synthetic workload: a profile's stream (traces/WORKLOADS.md). */
struct workload {
	char label[160]; /* "7b-instruct" or "7b-instruct acceptance=0.6" */
	struct wl_profile prof;
};
#define MAX_WORKLOADS 4
#define WL_SEED       1

struct repro {
	/* where runs are stored (NULL: nowhere); each run's worker process
	 * opens its own connection (run_pool.h), which db then is */
	const char *db_path;
	struct db *db;
	struct run_watch *watch;  /* the worker's, for run_spec */
	double run_timeout;       /* seconds; 0: none (--run-timeout) */
	size_t workers;           /* runs at once (-j) */
	struct sweep_shard shard; /* --shard: the runs of this shard only */
	size_t job_seq;           /* runs planned so far, every shard's */
	struct progress *pr;      /* the progress line */
	size_t failed, tried;     /* runs that failed, runs in all */
	int quiet;
	size_t n_traces, n_pairs, n_drafters;
	struct trace_data traces[MAX_TRACES];
	const char *pairs[MAX_PAIRS];
	struct trace_model models[MAX_PAIRS][2];
	const char *drafters[MAX_DRAFTERS];
	struct result *grid;      /* [family][trace][pair][drafter][config] */
	int fam;                  /* the family the tables below describe */
	int n_fam;                /* families run: [0, n_fam) */
	int wgroup;               /* the trace group the tables describe */
	const char *label_prefix; /* runs of a workload sweep */
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
	FILE *md; /* markdown accumulates here */
};

/* Is trace t in the group the tables describe? */

/* Which number of a run a ratio compares. */
enum metric { M_TOK_S = 0, M_TOK_J, M_ACCEPT };

/* --what-it-takes: the paper's ratios, and the constants searched. */
struct wit_ratio {
	const char *name;
	size_t num, den;
	enum metric m;
	double paper;
};
/* A constant: up to two preset keys scaled together by one factor. */
struct wit_const {
	const char *name;
	const char *what;
	const char *preset[2], *key[2];
};
extern const struct wit_ratio wit_ratios[];
extern const struct wit_const wit_consts[];
extern const size_t n_wit_ratios, n_wit_consts;
#define N_WIT_RATIOS n_wit_ratios
#define N_WIT_CONSTS n_wit_consts

/* Markdown output (repro_tables.c). */
void out(struct repro *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int in_group(const struct repro *r, size_t t);
const char *group_name(const struct repro *r, int g);
size_t cell(const struct repro *r, size_t t, size_t p, size_t d);
size_t cells(const struct repro *r);
struct result *grid_at(struct repro *r, size_t t, size_t p, size_t d, size_t c);
/* repro_study.c: traces, workloads, runs */
void trace_data_free(struct trace_data *t);
int trace_data_profile(struct trace_data *t, const struct workload *w,
                       int group, char *err, size_t errlen);
int parse_workload(struct workload *w, const char *spec, char *err,
                   size_t errlen);
int trace_data_load(struct trace_data *t, const char *path, int skip_synthetic,
                    char *err, size_t errlen);
int discover_traces(struct repro *r, const char *dir, char *err, size_t errlen);
int run_cell(struct repro *r, size_t ti, size_t pi, size_t di,
             const struct config *cf, const struct point *pt,
             struct result *res, char *err, size_t errlen);
/* One run of the study for run_cells(): its family, cell, configuration
 * (index into configs), sweep point (NULL in the grid), and where its
 * result goes. */
struct cell_job {
	int fam;
	size_t t, p, d, k;
	const struct point *pt;
	struct result *res;
};
/* Run the jobs, each in a worker process (run_pool.h): a run that fails
 * is printed, recorded in the failures table and counted in r->failed,
 * its result left not done; the others' results go to their res.
 * @return 0, or negative when no worker could be started. */
int run_cells(struct repro *r, const struct cell_job *jobs, size_t n, char *err,
              size_t errlen);
int check_sweep(const struct sweep *sw, const char *values, char *err,
                size_t errlen);
int run_sweep(struct repro *r, const struct sweep *sw, const char *values,
              char *err, size_t errlen);
int push_workload(struct repro *r, const struct workload *w, int g, char *err,
                  size_t errlen);
int run_trace_all(struct repro *r, size_t t, struct result *res,
                  const unsigned *only, size_t n_only, char *err,
                  size_t errlen);
double mean_ratio(const struct repro *r, const struct result *res, size_t num,
                  size_t den, enum metric m);
double metric_of(const struct result *x, enum metric m);
double cell_ratio(const struct result *num, const struct result *den,
                  enum metric m);
const char *fx(char *buf, size_t len, double v);
unsigned groups_present(const struct repro *r);
void table_setup(struct repro *r, double wall);
void table_ablation(struct repro *r);
void table_headline(struct repro *r);
void table_lpddr5(struct repro *r);
void table_acceptance(struct repro *r);
void table_families(struct repro *r, unsigned mask);
void table_share(struct repro *r);
int run_workload_sweep(struct repro *r, const char *spec, char *err,
                       size_t errlen);
int run_what_it_takes(struct repro *r, const char *const *ratios,
                      size_t n_ratios, const char *const *consts,
                      size_t n_consts, char *err, size_t errlen);

#endif
