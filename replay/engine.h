/* engine.h - the discrete-event replay engine.
 *
 * Replays one sequence at a time (batch 1) against a hardware plan under a
 * scheduling policy and a drafting algorithm, accumulating metrics. The
 * engine knows nothing of SQLite or msgpack; results leave through the
 * metrics struct and an optional event callback (both in results.h).
 */
#ifndef AHASD_ENGINE_H
#define AHASD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "hw.h"
#include "plugin.h"
#include "results.h"
#include "trace.h"

_Static_assert(HW_MAX_DEV <= RESULT_MAX_DEV,
               "results.h must hold every device of a platform");

struct replay_config {
	const struct hw_plan *plan;
	const struct plugin *policy; /* loaded, with state */
	const struct plugin *drafter;
	uint64_t seed;      /* counter RNG for sampled traces */
	uint32_t lookahead; /* trace K */
	/* format 1.1 (traces/FORMAT.md): the trace's TRACE_F_* features, and
	 * with accept_runs its R and T; 0 for a 1.0 trace */
	uint32_t trace_features;
	uint32_t run_max, tree_tokens;
	uint32_t queue_capacity;  /* max unverified drafted tokens */
	uint32_t max_draft;       /* hard cap on a batch */
	replay_event_fn on_event; /* optional */
	void *event_user;
};

struct replay;

/** Refuses a plugin that needs what the trace lacks (plugin_needs(),
 * AHASD_NEEDS_ENTROPY on a trace without entropies), naming it. */
int replay_create(struct replay **out, const struct replay_config *cfg,
                  char *err, size_t errlen);
/** Replay one sequence; accumulate into the run's metrics.
 * @return 0, or negative with a message (stuck simulation, bad state). */
int replay_sequence(struct replay *r, const struct trace_seq *seq,
                    struct replay_seq_result *out, char *err, size_t errlen);
/** Finish the run: adds static energy and idle times. */
void replay_finish(struct replay *r);
const struct replay_metrics *replay_metrics(const struct replay *r);
void replay_free(struct replay **r);

/** Counter-based RNG: uniform in [0,1) keyed by (seed, seq, pos). */
double replay_coin(uint64_t seed, uint32_t seq, uint32_t pos);

#endif
