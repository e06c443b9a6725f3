/* view.h - ahasd-view internals: read runs from a results database and
 * write them out as a self-contained HTML report or as Chrome trace-event
 * JSON (Perfetto, chrome://tracing).
 *
 * Reads through the plain SQLite handle of db_handle(); it never writes.
 * Functions return 0 or a negative errno-style code with a message in the
 * caller's err buffer.
 */
#ifndef AHASD_VIEW_H
#define AHASD_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sqlite3;

#define VIEW_MAX_DEV 8 /* lanes per run; more are reported, not drawn */

/* Event kinds in legend order; anything else is drawn grey as "other". */
enum view_kind {
	VIEW_KIND_DRAFT = 0,
	VIEW_KIND_VERIFY,
	VIEW_KIND_PREVERIFY,
	VIEW_KIND_SWITCH,
	VIEW_KIND_TRANSFER,
	VIEW_KIND_IDLE,
	VIEW_KIND_OFFLOAD, /* PIM work done by the compute device */
	VIEW_KIND_OTHER,
	VIEW_KIND_COUNT
};

struct view_dev {
	char *name;
	double busy_s, idle_s, energy_j;
};

struct view_run {
	int64_t id;
	char *created, *tool_version, *label;
	char *policy, *policy_params, *drafter, *drafter_params;
	char *hw_preset, *draft_model, *target_model, *retargeted_from;
	char *trace_path;
	int sampled;
	int64_t seed, queue_capacity, max_draft;
	double wall_s; /* NAN when not stored */
	/* Headline metrics; NAN when the run has no such metric. */
	double committed, time_s, tokens_per_s, energy_j, tokens_per_j;
	double acceptance_rate, mean_draft_len, events_dropped;
	double speedup, energy_gain; /* vs the matching sync run, or NAN */
	/* 95% intervals (db/SCHEMA.md, Intervals), NAN when not stored: of
	 * the metrics over the run's sequences, and paired of the speed-up */
	double tokens_per_s_lo, tokens_per_s_hi;
	double tokens_per_j_lo, tokens_per_j_hi;
	double acceptance_rate_lo, acceptance_rate_hi;
	double speedup_lo, speedup_hi;
	int64_t sync_run_id; /* its sync baseline, 0 if none */
	unsigned n_dev;      /* rows of the devices table */
	struct view_dev dev[VIEW_MAX_DEV];
	int64_t n_events;
	int64_t n_seq;
};

struct view_runs {
	struct view_run *v;
	size_t n;
};

/** Load runs (all of them when n_ids is 0, else exactly those ids in the
 * order given). @return 0, -ENOENT naming the first missing id, or another
 * negative code. */
int view_runs_load(struct sqlite3 *h, const int64_t *ids, size_t n_ids,
                   struct view_runs *out, char *err, size_t errlen);
void view_runs_clear(struct view_runs *r);

enum view_kind view_kind_parse(const char *name);
const char *view_kind_name(enum view_kind k);

struct view_html_opts {
	const char *db_name;    /* shown in the title */
	unsigned windows;       /* detail windows per timeline (default 4) */
	double window_s;        /* window length; 0 = chosen from the data */
	unsigned max_tasks;     /* rectangles per window (default 1500) */
	unsigned max_timelines; /* runs with a timeline (default 6) */
	unsigned max_studies;   /* trade-off plots (default 8) */
	size_t max_points;      /* points over all sweep charts (20000) */
	const char *metrics;    /* sweep charts' metrics: NULL (headline
	                            * and utilisation), "all", or a list */
};

/** Write the whole report for the runs given. */
int view_write_html(struct sqlite3 *h, const struct view_runs *runs,
                    const struct view_html_opts *o, FILE *out, char *err,
                    size_t errlen);

/** Write one run's events as trace-event JSON. -ENODATA when the run has
 * no events. */
int view_write_perfetto(struct sqlite3 *h, const struct view_run *run,
                        FILE *out, char *err, size_t errlen);

/* ---- a run's timeline (view_timeline.c) ---- */
#define VIEW_OV_BINS 550 /* overview columns */

struct view_tl_ev {
	double t0, t1;
	int64_t seq, batch;
	uint32_t tokens;
	unsigned lane;
	enum view_kind kind;
	char kind_name[16];
	char outcome[12];
};

struct view_tl_win {
	double a, b;
	struct view_tl_ev *ev;
	size_t n, cap;
	int64_t total; /* tasks overlapping the window */
};

struct view_timeline {
	const struct view_run *run;
	unsigned n_lanes;
	int64_t lane_events[VIEW_MAX_DEV];
	int64_t off_lane; /* events of devices past VIEW_MAX_DEV */
	double t_end;
	double win_s;
	unsigned n_win;
	struct view_tl_win *win;
	double *ov;        /* [lane][bin][kind] busy seconds */
	double *seq_start; /* sequence start times, ascending */
	size_t n_seq;
	int64_t *seq_id;
};

/** Read run t->run's events (t zeroed, t->run set): lanes, the overview
 * and up to `windows` windows of window_s seconds (0: chosen so the
 * busiest lane has about 90 tasks in one), each holding at most max_tasks
 * events. @return 0, -EIO or -ENOMEM (message in err). */
int view_timeline_load(struct sqlite3 *h, struct view_timeline *t,
                       unsigned windows, double window_s, unsigned max_tasks,
                       char *err, size_t errlen);
void view_timeline_free(struct view_timeline *t);

/* ---- what the runs shown vary in, and what they measure (view_sweep.c) ---- */

/* A configuration key (db/SCHEMA.md, config) whose value differs among
 * the runs shown: a swept key. */
struct view_key {
	char *name;
	int numeric;     /* every value it has is a number */
	size_t n_values; /* distinct values */
};

/* A metric (a name of the metrics table, or "speedup" over the sync run
 * of the same configuration). */
struct view_metric {
	char *name;
	int has_ci; /* some run has a 95% interval of it */
};

struct view_sweep {
	size_t n_runs;        /* as the runs given, in their order */
	struct view_key *key; /* swept keys, by name; policy is never one */
	size_t n_keys;
	char **text;                /* [run * n_keys + key]: the value as text,
	                         * NULL when the run has no such key */
	double *num;                /* the same as a number, NAN if not one */
	struct view_metric *metric; /* headline metrics first, then by name */
	size_t n_metrics;
	double *val, *lo, *hi; /* [run * n_metrics + metric], NAN: none */
	double *area;          /* [run]: run_area.area_mm2, NAN if none */
	size_t default_key;    /* the key a chart starts with */
};

/** What the runs vary in (swept keys: two values or more among them;
 * keys that only follow hw.preset, trace.path or drafter are left out,
 * and trace.sha256 always), their metrics and intervals.
 * @return 0, -EIO or -ENOMEM with a message. */
int view_sweep_load(struct sqlite3 *h, const struct view_runs *runs,
                    struct view_sweep *out, char *err, size_t errlen);
void view_sweep_free(struct view_sweep *s);
/** Index of metric name, or -1. */
long view_sweep_metric(const struct view_sweep *s, const char *name);

/** Mark the points on the Pareto front of (x[i], y[i]), both maximised:
 * those no other point is at least as large as in both and larger than
 * in one. Equal points are on it together; a point with a NAN is never
 * on it. @return how many are on it. */
size_t view_pareto(const double *x, const double *y, size_t n,
                   unsigned char *on);

/* ---- helpers shared by the writers (view_util.c) ---- */
void view_put_html(FILE *f, const char *s); /* escapes & < > " ' */
void view_put_json(FILE *f, const char *s); /* quoted JSON string */
/** Round up to 1, 2 or 5 times a power of ten. */
double view_nice_ceil(double x);
/** Format seconds with a unit fitting the scale ("1.25 ms"). */
void view_fmt_time(char *buf, size_t len, double s, double scale);
void view_set_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
