/* db_stress.h - what the stress writer (db_stress_writer.c) stores for run
 * r of writer w, so that test_db_conc.c can check every stored row against
 * what was written without talking to the writer. Plain functions of
 * (w, r, s, e); nothing here touches SQLite. */
#ifndef AHASD_DB_STRESS_H
#define AHASD_DB_STRESS_H

#include <stdint.h>
#include <stdio.h>

#include "results.h"

#define STRESS_N_DEV 2
#define STRESS_EXTRA 2 /* stress.writer, stress.run */
/* 30 standard metrics (no pim_share_*: share_batches is 0), 3 per device,
 * the extra counters */
#define STRESS_METRICS (30 + 3 * STRESS_N_DEV + STRESS_EXTRA)

static inline void stress_label(char *buf, size_t len, unsigned w, unsigned r)
{
	snprintf(buf, len, "stress w%u r%u", w, r);
}

static inline struct replay_seq_result stress_seq(unsigned w, unsigned r,
                                                  unsigned s)
{
	const struct replay_seq_result q = {
		.seq = s,
		.prompt_len = 10 + s,
		.committed = 1000 * w + 100 * r + s + 1,
		.time_s = 0.001 * (w + 1) + 1e-4 * r + 1e-6 * s,
		.energy_j = 0.5 * (r + 1) + 0.25 * s,
		.drafted = 7u * s + w,
		.accepted = 5u * s + r,
		.wasted = 2u * s,
		.preverified = s % 3,
		.batches = s + 1,
		.verifications = s + 2,
	};
	return q;
}

static inline struct replay_event stress_event(unsigned w, unsigned r,
                                               unsigned s, unsigned e)
{
	const struct replay_event ev = {
		.device = (int)(e % STRESS_N_DEV),
		.kind = (enum replay_event_kind)(e % REPLAY_EV_KIND_COUNT),
		.start_s = s + 0.001 * e,
		.end_s = s + 0.001 * e + 0.0005,
		.tokens = e % 5,
		.seq = s,
		.batch = 1000u * w + r,
		.outcome = (enum replay_outcome)(e % (REPLAY_OUT_WASTED + 1)),
	};
	return ev;
}

/* committed over all sequences of a run of n_seq sequences */
static inline uint64_t stress_committed(unsigned w, unsigned r, unsigned n_seq)
{
	uint64_t c = 0;

	for (unsigned s = 0; s < n_seq; s++)
		c += stress_seq(w, r, s).committed;
	return c;
}

#endif
