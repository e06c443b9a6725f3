/* sweep_plan.h - a sweep's grid and its plan, shared by the programs that
 * sweep (ahasd-replay, ahasd-search).
 *
 * The grid is the cartesian product of the traces, presets, policies,
 * drafters and the values of every -P key (sweep.h), where a key
 * multiplies only the runs of the plugins it reaches: a policy that does
 * not take `k` runs once for all values of `-P k=1,2,4`, so a baseline
 * policy in a sweep runs once at every point. sweep_grid_check() checks
 * every plugin, preset and value, in every combination a run will have,
 * before the first run; sweep_plan_make() lists the runs in the order
 * they run.
 *
 * Messages (errors, and warnings about choices that cannot matter) go to
 * the grid's diag stream, each line prefixed with its prog name.
 */
#ifndef AHASD_SWEEP_PLAN_H
#define AHASD_SWEEP_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "run.h"

#define SWEEP_MAX_LIST    16
#define SWEEP_MAX_PARAMS  64
#define SWEEP_MAX_PLUGINS (2 * SWEEP_MAX_LIST)
/** Most runs a plan may hold. */
#define SWEEP_PLAN_MAX 1000000

/* One -P KEY=SPEC: its values (one unless swept). */
struct sweep_param {
	const char *key;
	const char *spec;
	char **val;
	size_t n_val;
	int hw; /* hw.KEY or hw.DEV.KEY */
};

struct sweep_grid {
	const char *prog; /* prefix of messages */
	FILE *diag;       /* where they go (stderr when NULL) */
	const char *policies[SWEEP_MAX_LIST];
	size_t n_policies;
	const char *drafters[SWEEP_MAX_LIST];
	size_t n_drafters;
	const char *presets[SWEEP_MAX_LIST];
	size_t n_presets;
	struct sweep_param param[SWEEP_MAX_PARAMS];
	size_t n_params;
	const char *models; /* --models DRAFT:TARGET or NULL */
	uint64_t seed;
	uint32_t queue_capacity, max_draft;
	/* Filled by sweep_grid_check: the plugins, policies then drafters,
	 * their names and which keys reach each (reach[k][i]: 0 not, else 1
	 * + the offset of the name the plugin sees in the key, so
	 * "ahasd.edc" reaches ahasd as "edc"). */
	size_t n_plugins;
	char plugin_name[SWEEP_MAX_PLUGINS][64];
	unsigned char reach[SWEEP_MAX_PLUGINS][SWEEP_MAX_PARAMS];
};

/* One planned run: indices into the lists, and into each key's values. */
struct sweep_run {
	size_t trace, preset, policy, drafter;
	size_t *val; /* n_params indices */
};

struct sweep_plan {
	struct sweep_run *run;
	size_t n;
	size_t *vals; /* n x n_params */
};

/* The options every sweep takes, spelt the same in ahasd-replay and
 * ahasd-search: which one sweep_grid_option() is given. */
enum sweep_opt {
	SWEEP_OPT_POLICY,    /* -p, --policy P (repeatable) */
	SWEEP_OPT_DRAFTER,   /* -d, --drafter D (repeatable) */
	SWEEP_OPT_HW,        /* -w, --hw PRESET (repeatable) */
	SWEEP_OPT_PARAM,     /* -P, --param KEY=SPEC: each key once, its
	                         * values expanded (sweep.h) */
	SWEEP_OPT_SEED,      /* --seed N */
	SWEEP_OPT_QUEUE,     /* --queue-capacity N, 1 to 4096 */
	SWEEP_OPT_MAX_DRAFT, /* --max-draft N, 1 to HW_MAX_M - 1 */
	SWEEP_OPT_MODELS,    /* --models DRAFT:TARGET or :TARGET */
};

/** An empty grid: messages prefixed with prog, seed 1, queue capacity
 * 32, maximum draft 64. */
void sweep_grid_init(struct sweep_grid *g, const char *prog);

/** Take option opt with its argument (arg is split in place for -P and
 * must live as long as the grid). @return 0, or 2 (a usage error) with a
 * message. */
int sweep_grid_option(struct sweep_grid *g, enum sweep_opt opt, char *arg);

/** What was not given: policies sync, async and ahasd; drafter adaedl;
 * preset npu-pim. */
void sweep_grid_defaults(struct sweep_grid *g);

/** An integer option in [min, max]. @return 0, or -1 with a message
 * naming opt. */
int sweep_parse_u64(const struct sweep_grid *g, const char *opt, const char *s,
                    uint64_t min, uint64_t max, uint64_t *out);

/** --run-timeout: seconds in [0, 1e9], 0 for no bound. @return 0, or -1
 * with a message. */
int sweep_parse_timeout(const struct sweep_grid *g, const char *s, double *out);

/** Free the keys' values. */
void sweep_grid_free(struct sweep_grid *g);

/** Load every plugin (which keys reach it: every key but hw.* must reach
 * one), create it with every value of its keys in every combination it
 * will run with, load every preset with every value of the hw.* keys,
 * and the model presets; warn about choices that cannot matter.
 * @return 0, or 1 with a message. */
int sweep_grid_check(struct sweep_grid *g);

/** Every run of the grid over n_traces traces, in the order they run:
 * trace, preset, point of the hw.* keys, policy, drafter, point of the
 * keys that reach that policy or drafter. @return 0, or 1 with a
 * message (more than SWEEP_PLAN_MAX runs, out of memory). */
int sweep_plan_make(const struct sweep_grid *g, size_t n_traces,
                    struct sweep_plan *out);
void sweep_plan_free(struct sweep_plan *p);

/** Key i is part of run r's configuration: a hardware key, or one that
 * reaches its policy or drafter. */
int sweep_applies(const struct sweep_grid *g, const struct sweep_run *r,
                  size_t i);

/* The key-value arrays a run_spec points into. */
struct sweep_spec_kv {
	struct run_kv hw[SWEEP_MAX_PARAMS];
	struct run_kv policy[SWEEP_MAX_PARAMS];
	struct run_kv drafter[SWEEP_MAX_PARAMS];
};

/** Fill spec with run r's preset, overrides, plugins and their
 * parameters, seed, queue capacity and maximum draft (pointing into kv
 * and the grid); the rest of spec is left as it was. */
void sweep_run_spec(const struct sweep_grid *g, const struct sweep_run *r,
                    struct sweep_spec_kv *kv, struct run_spec *spec);

/** Run r's configuration but for its trace, preset, policy and drafter,
 * as text for the failures table: the fixed settings, then each -P key
 * that applies to it with the value it had. */
void sweep_config_text(const struct sweep_grid *g, const struct sweep_run *r,
                       char *buf, size_t len);

#endif
