/* engine.h - the discrete-event replay engine.
 *
 * Replays one sequence at a time (batch 1) against a hardware plan under a
 * scheduling policy and a drafting algorithm, accumulating metrics. The
 * engine knows nothing of SQLite or msgpack; results leave through the
 * metrics struct and an optional event callback.
 */
#ifndef AHASD_ENGINE_H
#define AHASD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "hw.h"
#include "plugin.h"
#include "trace.h"

enum replay_event_kind {
	REPLAY_EV_DRAFT = 0,
	REPLAY_EV_VERIFY,
	REPLAY_EV_PREVERIFY,
	REPLAY_EV_SWITCH,
	REPLAY_EV_TRANSFER,
	REPLAY_EV_IDLE,
	REPLAY_EV_OFFLOAD,        /* PIM work the compute device does (no AAU) */
	REPLAY_EV_KIND_COUNT
};
const char *replay_event_kind_name(enum replay_event_kind k);

enum replay_outcome {
	REPLAY_OUT_NONE = 0,      /* not settled by this task */
	REPLAY_OUT_ACCEPTED,      /* all tokens accepted */
	REPLAY_OUT_REJECTED,      /* a rejection inside */
	REPLAY_OUT_WASTED,        /* draft later discarded (off-path) */
};
const char *replay_outcome_name(enum replay_outcome o);

/* One task on a device lane, for timelines. */
struct replay_event {
	int device;               /* index into the platform's devices */
	enum replay_event_kind kind;
	double start_s, end_s;    /* absolute simulated time of the run */
	uint32_t tokens;
	uint32_t seq;
	uint64_t batch;           /* batch id, 0 if none */
	enum replay_outcome outcome;
};

typedef void (*replay_event_fn)(void *user, const struct replay_event *ev);

struct replay_seq_result {
	uint32_t seq;
	uint32_t prompt_len;
	uint32_t committed;
	double time_s;
	double energy_j;
	uint64_t drafted, accepted, wasted, preverified;
	uint64_t batches, verifications;
};

struct replay_metrics {
	uint64_t sequences;
	uint64_t committed;       /* == sum of trace lengths */
	double time_s;            /* simulated */
	double energy_j;          /* dynamic + static */
	double dynamic_j, static_j;
	double busy_s[HW_MAX_DEV];
	double idle_s[HW_MAX_DEV];
	double dev_energy_j[HW_MAX_DEV]; /* dynamic + static per device */
	uint64_t drafted;         /* draft steps executed */
	uint64_t accepted;        /* drafted tokens later committed */
	uint64_t wasted;          /* drafted tokens discarded */
	double wasted_draft_s;    /* time of those draft steps (task or step) */
	double wasted_draft_j;    /* their dynamic energy, all devices */
	uint64_t preverified;     /* tokens processed by pre-verification */
	uint64_t preverify_tasks;
	uint64_t preverify_rejections; /* wrong drafts found by pre-verify */
	uint64_t batches;         /* draft batches closed */
	uint64_t batch_tokens;    /* tokens in them when they closed */
	uint64_t lookahead_batches; /* batches drafted over unverified ones */
	uint64_t verifications;
	uint64_t switches;
	uint64_t waits;           /* policy chose WAIT */
	uint64_t events_dropped;  /* events past the recording bound */
	double offload_s;         /* compute-device time spent on PIM work
	                           * shipped out (no AAU) */
	double contention_s;      /* time verifications lost to the PIM
	                           * holding shared channels */
	double offload_bytes;     /* weights streamed over the host link */
	/* synchronous schedules on a platform with a PIM: the PIM's share of
	 * each batch's latency (its draft steps and verification) */
	uint64_t share_batches;
	double pim_share_min, pim_share_max, pim_share_sum;
};

struct replay_config {
	const struct hw_plan *plan;
	const struct plugin *policy;   /* loaded, with state */
	const struct plugin *drafter;
	uint64_t seed;                 /* counter RNG for sampled traces */
	uint32_t lookahead;            /* trace K */
	uint32_t queue_capacity;       /* max unverified drafted tokens */
	uint32_t max_draft;            /* hard cap on a batch */
	replay_event_fn on_event;      /* optional */
	void *event_user;
};

struct replay;

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
