/* view_mkdb.c - a results database of hand-chosen points, written through
 * db.c, for the checks of the report's plots (tests/browser/test_report.sh)
 * and of the pareto view (tests/test_view_plots.c).
 *
 *   viewer-mkdb OUT.db
 *
 * Every run commits 1000 tokens; its time and energy are chosen so that
 * tokens/s and tokens/J are the numbers below. Each has the 95% intervals
 * [0.9 v, 1.1 v] of both, and one configuration key swept, hw.x (from
 * hw_config), besides the policy.
 *
 *   run  study  policy  hw.x  tokens/s  tokens/J  on the front of its study?
 *    1   front  sync     1      10        90      yes: nothing has tokens/J >= 90 but itself
 *    2   front  sync     2      20        80      yes: only run 1 has more tokens/J, and it is slower
 *    3   front  sync     3      20        70      no: run 2 is as fast and more efficient
 *    4   front  ahasd    1      30        60      yes: only run 8 is as good, and equal is not better
 *    5   front  ahasd    2      25        60      no: runs 4 and 8 are faster and as efficient
 *    6   front  ahasd    3      40        40      yes: the fastest
 *    7   front  async    1      35        40      no: run 6 is faster and as efficient
 *    8   front  async    2      30        60      yes: equal to run 4, which does not beat it
 *    9   front  async    3      15        50      no: run 2 is faster and more efficient
 *   10   other  mine     1      45       100      yes (alone in study other with 11;
 *   11   other  mine     2      50        95      yes  neither beats the other)
 *
 * Runs 10 and 11 would dominate every run of study front (none is as fast
 * as 45 tokens/s or as efficient as 95 tokens/J): the fronts are per
 * study.
 *
 * Area (run_area, from area_costs): async and ahasd have the queues,
 * 0.01 mm^2; run 6 alone has the AAU too (hw.aau = 1), 1.26 in all;
 * sync and mine nothing (no policy parameters are stored, so no EDC or
 * TVC). With area as a third cost (on_front_area) the front gains run 7
 * (35, 40, 0.01): the one run that beats it, 6 (40, 40), is larger. The
 * others off the front stay off: 3 is beaten by 2, 5 by 4 and 8, 9 by 2,
 * each no larger. Study front: 1, 2, 4, 6, 7, 8; study other: 10, 11.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

struct point {
	const char *study, *policy;
	int x;
	double tps, tpj;
};

static const struct point points[] = {
	{ "front", "sync", 1, 10, 90 },  { "front", "sync", 2, 20, 80 },
	{ "front", "sync", 3, 20, 70 },  { "front", "ahasd", 1, 30, 60 },
	{ "front", "ahasd", 2, 25, 60 }, { "front", "ahasd", 3, 40, 40 },
	{ "front", "async", 1, 35, 40 }, { "front", "async", 2, 30, 60 },
	{ "front", "async", 3, 15, 50 }, { "other", "mine", 1, 45, 100 },
	{ "other", "mine", 2, 50, 95 },
};

int main(int argc, char **argv)
{
	char err[512];
	struct db *d = NULL;

	if (argc != 2) {
		fputs("usage: viewer-mkdb OUT.db\n", stderr);
		return 2;
	}
	if (db_open(&d, argv[1], err, sizeof err) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
		const struct point *p = &points[i];
		char hw[64];
		struct db_run_info in = {
			.tool_version = "0.1.0-test",
			.label = p->study,
			.policy = p->policy,
			.policy_version = "1.0",
			.policy_params = "",
			.policy_path = "/p/policy.so",
			.drafter = "fixed",
			.drafter_version = "1.0",
			.drafter_params = "k=2",
			.drafter_path = "/p/fixed.so",
			.hw_preset = "hand",
			.hw_config = hw,
			.trace_path = "/t/hand.trace",
			.trace_sha256 = "00",
			.draft_model = "d",
			.target_model = "t",
			.sampled = 0,
			.seed = 1,
			.queue_capacity = 16,
			.max_draft = 8,
			.device_names = { "npu", "pim" },
			.n_dev = 2,
		};
		struct replay_seq_result sr = {
			.seq = 0,
			.prompt_len = 4,
			.committed = 1000,
			.time_s = 1000 / p->tps,
			.energy_j = 1000 / p->tpj,
		};
		struct replay_metrics m = {
			.sequences = 1,
			.committed = 1000,
			.time_s = 1000 / p->tps,
			.energy_j = 1000 / p->tpj,
			.drafted = 10,
			.accepted = 5,
			.batches = 2,
			.verifications = 2,
		};
		struct stats_interval iv[STATS_N_METRICS];
		int64_t id;

		snprintf(hw, sizeof hw, "x = %d\n%s", p->x,
		         i == 5 ? "aau = 1\n" : "");
		for (int k = 0; k < STATS_N_METRICS; k++)
			iv[k] = (struct stats_interval){ 0, 0, 0 };
		/* the metrics as db.c will compute them from m */
		iv[STATS_TOKENS_PER_S].value = m.committed / m.time_s;
		iv[STATS_TOKENS_PER_J].value = m.committed / m.energy_j;
		for (int k = 0; k < 2; k++) {
			iv[k].lo = 0.9 * iv[k].value;
			iv[k].hi = 1.1 * iv[k].value;
		}
		iv[STATS_ACCEPTANCE_RATE] = (struct stats_interval){ 0.5, 0.4,
			                                             0.6 };
		iv[STATS_MEAN_DRAFT_LEN] = (struct stats_interval){ 5, 4, 6 };
		m.busy_s[0] = 0.5 * m.time_s;
		m.busy_s[1] = 0.25 * m.time_s;
		if (db_run_begin(d, &in, &id, err, sizeof err) < 0 ||
		    db_run_sequence(d, id, &sr, err, sizeof err) < 0 ||
		    db_run_intervals(d, id, iv, err, sizeof err) < 0 ||
		    db_run_commit(d, id, &m, 0.001, NULL, NULL, 0, err,
		                  sizeof err) < 0)
			goto fail;
		if (id != (int64_t)i + 1) {
			snprintf(err, sizeof err, "run %zu got id %lld", i + 1,
			         (long long)id);
			goto fail;
		}
	}
	db_close(&d);
	return 0;
fail:
	fprintf(stderr, "viewer-mkdb: %s\n", err);
	db_close(&d);
	return 1;
}
