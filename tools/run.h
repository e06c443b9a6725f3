/* run.h - one run assembled: a resolved configuration and a token stream
 * in; metrics, plugin counters and (optionally) stored rows out.
 *
 * Every program that replays (ahasd-replay, ahasd-repro, the bench) goes
 * through run_execute(): load the preset and apply its overrides, build
 * the plan, load and create both plugins, record the run, replay every
 * sequence, collect the counters, commit. The module prints nothing.
 */
#ifndef AHASD_RUN_H
#define AHASD_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "results.h"
#include "stats.h"
#include "trace.h"
#include "trace_mem.h"

struct run_kv {
	const char *key, *value;
};

/* What another process can see of a run while it runs, from memory it
 * shares with the run's process (run_pool.c maps it): which plugin hook
 * is in progress, the run's id, the plugins' names. */
struct run_watch {
	/* PLUGIN_WHERE(kind, hook) while a plugin's code runs (plugin.h),
	 * 0 outside; left set when the plugin's return value was refused */
	volatile uint32_t where;
	volatile int64_t run_id;      /* db_run_begin's id, -1 before */
	char policy[64], drafter[64]; /* descriptor names, once loaded */
};

/* The token stream and what the run record says about it. */
struct run_stream {
	const char *path;   /* runs.trace_path */
	const char *sha256; /* runs.trace_sha256 */
	int sampled;
	uint32_t lookahead;
	/* format 1.1: TRACE_F_* of the trace; accept_runs' R and T; the
	 * lookup's name when the draft has no model (then draft is NULL) */
	uint32_t features, run_max, tree_tokens;
	const char *draft_lookup;
	/* models whose operators are costed: the trace's own, or presets
	 * it is retargeted to (then retargeted_from = "draft:target" of the
	 * trace) */
	const struct trace_model *draft, *target;
	const char *retargeted_from;
	/* the sequences: in memory (mem), or else a reader rewound before
	 * the run and read to its end */
	const struct trace_mem *mem;
	struct trace_reader *reader;
	/* largest prompt_len + n, checked against the target's context */
	uint64_t max_context;
	uint32_t max_context_id;
};

struct run_spec {
	const char *label;       /* runs.label, or NULL */
	const char *preset;      /* hardware preset: name or path */
	const struct run_kv *hw; /* preset overrides, applied in order */
	size_t n_hw;
	const char *policy, *drafter; /* plugins: name or path */
	const struct run_kv *policy_params, *drafter_params;
	size_t n_policy_params, n_drafter_params;
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	int record_events;       /* store the timeline (with a db) */
	uint64_t max_events;     /* bound on stored events; 0: default */
	struct run_watch *watch; /* optional: kept up to date */
	int no_intervals;        /* leave out.ci NAN (bench-replay's
	                              * engine-only figures; never with a db) */
};

#define RUN_MAX_COUNTERS 64

struct run_result {
	int64_t run_id;          /* -1 when not stored */
	struct replay_metrics m; /* m.events_dropped: events past the bound */
	double wall_s;           /* the replay loop's wall time */
	char policy[64], drafter[64], preset[64];
	unsigned n_dev;
	char dev_name[RESULT_MAX_DEV][32];
	/* what its baseline is matched on (db/SCHEMA.md, run_match): equal
	 * match_key, the same configuration but for the policy */
	char match_key[65], policy_key[65];
	/* 95% bootstrap intervals of the headline metrics over the run's
	 * sequences (stats.h, in enum stats_metric order) */
	struct stats_interval ci[STATS_N_METRICS];
	size_t n_counters; /* plugin counters, "policy.x"/"drafter.y" */
	char counter_name[RUN_MAX_COUNTERS][96];
	double counter[RUN_MAX_COUNTERS];
};

/* A trace file opened for a sweep: read once to its end (every record
 * checked, the SHA-256 computed from the bytes as they are parsed), held
 * in memory when the file is at most mem_max bytes, else read again by
 * each run; optionally retargeted to model presets. */
struct run_source {
	struct trace_reader *rd; /* its header, or the stream */
	struct trace_mem mem;    /* the sequences, when held */
	int in_memory;
	char sha[65];
	struct trace_model models[2]; /* retarget presets */
	char retarget[2 * TRACE_NAME_MAX + 2];
	struct run_stream stream; /* what run_execute takes */
};

/** Traces up to this size are held in memory by default. */
#define RUN_MEM_MAX_DEFAULT (1ull << 30)
/** $AHASD_TRACE_MEM_MAX (bytes), or RUN_MEM_MAX_DEFAULT. */
uint64_t run_mem_max(void);

/** Open path; models is "DRAFT:TARGET" (model presets the token stream is
 * costed on; ":TARGET" for a trace whose draft is a lookup) or NULL.
 * @return 0, or negative with a message (s is then closed). */
int run_source_open(struct run_source *s, const char *path, uint64_t mem_max,
                    const char *models, char *err, size_t errlen);
void run_source_close(struct run_source *s);

/** Default bound on stored events per run. */
#define RUN_DEFAULT_MAX_EVENTS 1000000

/** Replay the stream under spec; store the run in db unless db is NULL.
 * On failure nothing of the run stays in db. The plugins are destroyed
 * before the commit, so a run whose plugin fails in destroy is not
 * stored either. @return 0, or negative with a message in err. */
int run_execute(const struct run_spec *spec, const struct run_stream *src,
                struct db *db, struct run_result *out, char *err,
                size_t errlen);

/** A named value of a finished run: a metric of results.h, or a plugin
 * counter. NaN if it has neither. */
double run_value(const struct run_result *r, const char *name);

#endif
