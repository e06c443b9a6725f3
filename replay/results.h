/* results.h - what a run produces: per-sequence results, run metrics,
 * timeline events, and the one table of derived metrics (name, unit,
 * description, formula) that the database, the CLI summary and the report
 * all read.
 *
 * A leaf header: it includes nothing of the engine, the hardware model or
 * the trace format, so db/ and viewer/ depend on it alone.
 */
#ifndef AHASD_RESULTS_H
#define AHASD_RESULTS_H

#include <stddef.h>
#include <stdint.h>

/* Devices a platform may have (hw.h's HW_MAX_DEV must not exceed it). */
#define RESULT_MAX_DEV 2

enum replay_event_kind {
	REPLAY_EV_DRAFT = 0,
	REPLAY_EV_VERIFY,
	REPLAY_EV_PREVERIFY,
	REPLAY_EV_SWITCH,
	REPLAY_EV_TRANSFER,
	REPLAY_EV_IDLE,
	REPLAY_EV_OFFLOAD, /* PIM work the compute device does (no AAU) */
	REPLAY_EV_KIND_COUNT
};
const char *replay_event_kind_name(enum replay_event_kind k);

enum replay_outcome {
	REPLAY_OUT_NONE = 0, /* not settled by this task */
	REPLAY_OUT_ACCEPTED, /* all tokens accepted */
	REPLAY_OUT_REJECTED, /* a rejection inside */
	REPLAY_OUT_WASTED,   /* draft later discarded (off-path) */
};
const char *replay_outcome_name(enum replay_outcome o);

/* One task on a device lane, for timelines. */
struct replay_event {
	int device; /* index into the platform's devices */
	enum replay_event_kind kind;
	double start_s, end_s; /* absolute simulated time of the run */
	uint32_t tokens;
	uint32_t seq;
	uint64_t batch; /* batch id, 0 if none */
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
	uint64_t batch_tokens; /* tokens in its batches when they closed */
};

struct replay_metrics {
	uint64_t sequences;
	uint64_t committed; /* == sum of trace lengths */
	double time_s;      /* simulated */
	double energy_j;    /* dynamic + static */
	double dynamic_j, static_j;
	double busy_s[RESULT_MAX_DEV];
	double idle_s[RESULT_MAX_DEV];
	double dev_energy_j[RESULT_MAX_DEV]; /* dynamic + static per device */
	uint64_t drafted;                    /* draft steps executed */
	uint64_t accepted;     /* drafted tokens later committed */
	uint64_t wasted;       /* drafted tokens discarded */
	double wasted_draft_s; /* time of those draft steps (task or step) */
	double wasted_draft_j; /* their dynamic energy, all devices */
	uint64_t preverified;  /* tokens processed by pre-verification */
	uint64_t preverify_tasks;
	uint64_t preverify_rejections; /* wrong drafts found by pre-verify */
	uint64_t batches;              /* draft batches closed */
	uint64_t batch_tokens;         /* tokens in them when they closed */
	uint64_t lookahead_batches; /* batches drafted over unverified ones */
	uint64_t verifications;
	uint64_t switches;
	uint64_t waits;          /* policy chose WAIT */
	uint64_t events_dropped; /* events past the recording bound */
	double offload_s;        /* compute-device time spent on PIM work
	                           * shipped out (no AAU) */
	double contention_s;     /* time verifications lost to the PIM
	                           * holding shared channels */
	double offload_bytes;    /* weights streamed over the host link */
	/* synchronous schedules on a platform with a PIM: the PIM's share of
	 * each batch's latency (its draft steps and verification) */
	uint64_t share_batches;
	double pim_share_min, pim_share_max, pim_share_sum;
};

/* One derived or stored metric of a run. value() returns NaN when the
 * metric does not apply to the run (it is then not stored). */
struct metric_def {
	const char *name; /* metrics.name in the database */
	const char *unit; /* "tokens/s", "J", "" for counts */
	const char *description;
	const char *formula; /* how it follows from replay_metrics */
	double (*value)(const struct replay_metrics *m);
};

/** The run-level metrics, in storage order. */
extern const struct metric_def metric_defs[];
extern const size_t metric_defs_count;

/** A metric by name, or NULL. */
const struct metric_def *metric_find(const char *name);
/** The value of a named metric for m (NaN if unknown or not applicable). */
double metric_value(const struct replay_metrics *m, const char *name);

#endif
