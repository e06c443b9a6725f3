/* test_baseline.c - a run's baseline is matched on its whole
 * configuration (issue 12, item 2).
 *
 * The question of issue 12: how does AHASD's advantage over sync change
 * as the PIM's bandwidth goes from 128 to 512 GB/s, on the LLaMA2 pair
 * (--models llama2-7b:llama2-13b) with AdaEDL? Each answer here is checked
 * against the same runs paired by hand: the sync and the ahasd run of one
 * invocation share a label, and nothing else is looked at.
 */
#include "prog_util.h"

#include <math.h>

#define TRACE "traces/stories260K-skip3-sampled.msgpack"

static const char *const bandwidths[] = { "128e9", "256e9", "512e9" };
#define N_BW (sizeof bandwidths / sizeof *bandwidths)

TestSuite(baseline, .init = prog_setup, .fini = prog_teardown,
          .timeout = 120);

/* ahasd's tokens/s over sync's, both of the invocation labelled label:
 * the pairing a user would make by hand. */
static double paired_by_label(const char *db, const char *label)
{
	return prog_q_dbl(db,
	        "SELECT a.tokens_per_s / s.tokens_per_s FROM run_summary a "
	        "JOIN run_summary s ON s.label = a.label AND s.policy = 'sync' "
	        "WHERE a.policy = 'ahasd' AND a.label = '%s'", label);
}

static double sign(double x)
{
	return (x > 0) - (x < 0);
}

/* The sweep as a shell loop: one invocation per bandwidth, each running
 * sync and ahasd. speedup_vs_sync must give every ahasd run the speed-up
 * over the sync run of its own bandwidth, so the trend over bandwidth has
 * the sign of the hand-paired one. (Matched on drafter, preset, models
 * and trace alone, every ahasd run was compared with the last sync run,
 * the one at 512 GB/s, and the trend came out the wrong way round.) */
Test(baseline, pim_bandwidth_trend_of_a_shell_loop)
{
	const char *db = prog_path("loop.db");
	double view[N_BW], hand[N_BW];

	for (size_t i = 0; i < N_BW; i++) {
		char param[64], label[64];

		snprintf(param, sizeof param, "hw.pim.mem_bw=%s", bandwidths[i]);
		snprintf(label, sizeof label, "bw=%s", bandwidths[i]);
		cr_assert_eq(REPLAY("-q", "--db", db, "-p", "sync", "-p", "ahasd",
		                    "-d", "adaedl", "--models",
		                    "llama2-7b:llama2-13b", "-P", param,
		                    "--label", label, prog_src_path(TRACE)),
		             0, "%s", prog_err);
		hand[i] = paired_by_label(db, label);
		view[i] = prog_q_dbl(db,
		        "SELECT v.speedup FROM speedup_vs_sync v JOIN runs r ON "
		        "r.id = v.run_id WHERE r.policy = 'ahasd' AND r.label = "
		        "'%s'", label);
	}
	/* after the whole loop: later sync runs must not move earlier
	 * answers */
	for (size_t i = 0; i < N_BW; i++) {
		char label[64];

		snprintf(label, sizeof label, "bw=%s", bandwidths[i]);
		view[i] = prog_q_dbl(db,
		        "SELECT v.speedup FROM speedup_vs_sync v JOIN runs r ON "
		        "r.id = v.run_id WHERE r.policy = 'ahasd' AND r.label = "
		        "'%s'", label);
		cr_expect(fabs(view[i] - hand[i]) <= 1e-12 * hand[i],
		          "%s: speedup_vs_sync %.6f, paired by hand %.6f",
		          label, view[i], hand[i]);
	}
	cr_assert_neq(sign(hand[N_BW - 1] - hand[0]), 0);
	cr_assert_eq(sign(view[N_BW - 1] - view[0]),
	             sign(hand[N_BW - 1] - hand[0]),
	             "trend from 128 to 512 GB/s: speedup_vs_sync %.3f -> %.3f, "
	             "paired by hand %.3f -> %.3f", view[0], view[N_BW - 1],
	             hand[0], hand[N_BW - 1]);
}
