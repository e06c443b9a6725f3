/* test_view_plots.c - what the report's plots stand on: the Pareto front
 * (viewer/view_sweep.c), the swept keys and metrics it reads from a
 * database of hand-chosen points (tests/view_mkdb.c), and the policy
 * colours (viewer/view_page.c).
 */
#include "prog_util.h"

#include <math.h>

#include "../viewer/view.h"
#include "../viewer/view_page.h"

TestSuite(view_plots, .init = prog_setup, .fini = prog_teardown, .timeout = 60);

static size_t front_of(const double *x, const double *y, size_t n,
                       unsigned char *on)
{
	return view_pareto(x, y, n, on);
}

/* The nine points of study "front" in tests/view_mkdb.c, where each is
 * worked out: runs 1, 2, 4, 6 and 8 are on the front. */
Test(view_plots, front_of_the_hand_points)
{
	const double x[9] = { 10, 20, 20, 30, 25, 40, 35, 30, 15 };
	const double y[9] = { 90, 80, 70, 60, 60, 40, 40, 60, 50 };
	const unsigned char want[9] = { 1, 1, 0, 1, 0, 1, 0, 1, 0 };
	unsigned char on[9];

	cr_assert_eq(front_of(x, y, 9, on), 5);
	for (int i = 0; i < 9; i++)
		cr_expect_eq(on[i], want[i], "run %d: on %d, want %d", i + 1,
		             on[i], want[i]);
}

/* The cases the rule has to get right, each worked out:
 *   equal points: neither beats the other, both on;
 *   a point equal in one coordinate and worse in the other: off;
 *   a NAN coordinate: never on, and it shadows nothing;
 *   nothing: nothing on. */
Test(view_plots, front_edge_cases)
{
	unsigned char on[4];
	const double ex[3] = { 5, 5, 1 }, ey[3] = { 5, 5, 1 };
	const double hx[2] = { 5, 5 }, hy[2] = { 4, 5 };
	const double vx[2] = { 4, 5 }, vy[2] = { 5, 5 };
	const double nx[3] = { NAN, 1, 100 }, ny[3] = { 100, 1, NAN };

	cr_assert_eq(front_of(ex, ey, 3, on), 2);
	cr_expect(on[0] && on[1] && !on[2]);
	cr_assert_eq(front_of(hx, hy, 2, on), 1);
	cr_expect(!on[0] && on[1]);
	cr_assert_eq(front_of(vx, vy, 2, on), 1);
	cr_expect(!on[0] && on[1]);
	cr_assert_eq(front_of(nx, ny, 3, on), 1);
	cr_expect(!on[0] && on[1] && !on[2]);
	cr_assert_eq(front_of(NULL, NULL, 0, on), 0);
}

/* Against a brute-force check of the definition, on random grids with
 * many ties (coordinates from a few values). */
Test(view_plots, front_matches_the_definition)
{
	double x[60], y[60];
	unsigned char on[60];
	uint64_t s = 12345;

	for (int round = 0; round < 200; round++) {
		const size_t n = 1 + (size_t)(round % 60);

		for (size_t i = 0; i < n; i++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			x[i] = (double)((s >> 33) % 7);
			y[i] = (double)((s >> 45) % 7);
		}
		view_pareto(x, y, n, on);
		for (size_t i = 0; i < n; i++) {
			int dominated = 0;

			for (size_t j = 0; j < n; j++)
				dominated |= x[j] >= x[i] && y[j] >= y[i] &&
				             (x[j] > x[i] || y[j] > y[i]);
			cr_assert_eq(on[i], !dominated, "round %d point %zu",
			             round, i);
		}
	}
}

/* ---- colours ---- */

static void lab(const char *hex, double out[3])
{
	unsigned v = (unsigned)strtoul(hex + 1, NULL, 16);
	double c[3] = { (v >> 16 & 255) / 255.0, (v >> 8 & 255) / 255.0,
		        (v & 255) / 255.0 };
	double xyz[3], f[3];

	for (int i = 0; i < 3; i++)
		c[i] = c[i] <= 0.04045 ? c[i] / 12.92
		                       : pow((c[i] + 0.055) / 1.055, 2.4);
	xyz[0] = (0.4124 * c[0] + 0.3576 * c[1] + 0.1805 * c[2]) / 0.95047;
	xyz[1] = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
	xyz[2] = (0.0193 * c[0] + 0.1192 * c[1] + 0.9505 * c[2]) / 1.08883;
	for (int i = 0; i < 3; i++)
		f[i] = xyz[i] > 0.008856 ? cbrt(xyz[i])
		                         : 7.787 * xyz[i] + 16.0 / 116;
	out[0] = 116 * f[1] - 16;
	out[1] = 500 * (f[0] - f[1]);
	out[2] = 200 * (f[1] - f[2]);
}

/* CIE76 colour difference. */
static double delta_e(const char *a, const char *b)
{
	double la[3], lb[3];

	lab(a, la);
	lab(b, lb);
	return sqrt((la[0] - lb[0]) * (la[0] - lb[0]) +
	            (la[1] - lb[1]) * (la[1] - lb[1]) +
	            (la[2] - lb[2]) * (la[2] - lb[2]));
}

/* Every policy colour, fixed or from the palette, is far from every
 * device colour (distances of 30 and more; 2.3 is the least a reader
 * notices) and from the other policy colours. */
Test(view_plots, policy_colours_apart_from_devices_and_each_other)
{
	const char *all[32];
	size_t n = 0;

	for (size_t i = 0; i < n_policy_fixed; i++)
		all[n++] = policy_fixed_colour[i][1];
	for (size_t i = 0; i < n_policy_palette; i++)
		all[n++] = policy_palette[i];
	for (size_t i = 0; i < n; i++) {
		for (size_t d = 0; d < VIEW_MAX_DEV; d++)
			cr_expect_geq(delta_e(all[i], dev_colour[d]), 30,
			              "%s is near device colour %s", all[i],
			              dev_colour[d]);
		for (size_t j = 0; j < i; j++)
			cr_expect_geq(delta_e(all[i], all[j]), 25,
			              "%s is near %s", all[i], all[j]);
	}
}

/* The same colour for a policy in every report: fixed for the three
 * known ones, else by the name's hash, never one of the fixed three. */
Test(view_plots, policy_colours_stable)
{
	const char *names[] = { "mine", "specpim", "x",
		                "policy-with-a-long"
		                "-name",
		                "" };

	cr_assert_str_eq(policy_col("sync"), "#8c510a");
	cr_assert_str_eq(policy_col("async"), "#f0a202");
	cr_assert_str_eq(policy_col("ahasd"), "#006d2c");
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		const char *c = policy_col(names[i]);
		int in_palette = 0;

		for (size_t j = 0; j < n_policy_palette; j++)
			in_palette |= c == policy_palette[j];
		cr_expect(in_palette, "%s: %s", names[i], c);
		cr_expect_eq(c, policy_col(names[i]));
	}
	/* FNV-1a of "mine" is 0x7e89edb6; mod 6 is 4: the palette's
	 * crimson */
	cr_expect_str_eq(policy_col("mine"), policy_palette[4]);
}

/* ---- what view_sweep_load reads from tests/view_mkdb.c's database ---- */

static const char *mkdb(void)
{
	const char *db = prog_path("plots.db");

	cr_assert_eq(prog_run("tests/viewer-mkdb", PROG_ARGS(db)), 0, "%s",
	             prog_err);
	return db;
}

Test(view_plots, swept_keys_and_metrics_of_the_hand_db)
{
	const char *path = mkdb();
	sqlite3 *h = prog_db(path);
	struct view_runs rs;
	struct view_sweep sw;
	char err[512];
	long tps;

	cr_assert_eq(view_runs_load(h, NULL, 0, &rs, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(rs.n, 11);
	cr_assert_eq(view_sweep_load(h, &rs, &sw, err, sizeof err), 0, "%s",
	             err);
	/* hw.x is the one swept key: the policy never is one, and every
	 * other key has one value */
	cr_assert_eq(sw.n_keys, 1);
	cr_assert_str_eq(sw.key[0].name, "hw.x");
	cr_assert(sw.key[0].numeric);
	cr_assert_eq(sw.key[0].n_values, 3);
	cr_assert_eq(sw.default_key, 0);
	cr_assert_str_eq(sw.text[2 * sw.n_keys], "3");
	cr_assert_eq(sw.num[2 * sw.n_keys], 3);
	/* the headline metrics first, with intervals */
	cr_assert_str_eq(sw.metric[0].name, "tokens_per_s");
	cr_assert_str_eq(sw.metric[1].name, "tokens_per_j");
	cr_assert(sw.metric[0].has_ci && sw.metric[1].has_ci);
	tps = view_sweep_metric(&sw, "tokens_per_s");
	cr_assert_eq(tps, 0);
	for (size_t i = 0; i < rs.n; i++) {
		const double v = sw.val[i * sw.n_metrics + (size_t)tps];

		cr_expect_eq(v, rs.v[i].tokens_per_s);
		cr_expect_eq(sw.lo[i * sw.n_metrics + (size_t)tps],
		             rs.v[i].tokens_per_s_lo);
		cr_expect_eq(sw.hi[i * sw.n_metrics + (size_t)tps],
		             rs.v[i].tokens_per_s_hi);
		cr_expect_lt(
		        fabs(sw.lo[i * sw.n_metrics + (size_t)tps] - 0.9 * v),
		        1e-9 * v);
	}
	view_sweep_free(&sw);
	view_runs_clear(&rs);
	sqlite3_close(h);
}

/* The report's front (view_pareto over each study's runs) is the pareto
 * view's (db/schema.sql): the same runs, on the hand-chosen points. */
Test(view_plots, report_front_is_the_pareto_view)
{
	const char *path = mkdb();
	sqlite3 *h = prog_db(path);
	struct view_runs rs;
	char err[512];
	const char *studies[] = { "front", "other" };

	cr_assert_eq(view_runs_load(h, NULL, 0, &rs, err, sizeof err), 0, "%s",
	             err);
	for (size_t k = 0; k < 2; k++) {
		double x[16], y[16];
		int64_t id[16];
		unsigned char on[16];
		size_t n = 0;
		sqlite3_stmt *s;

		for (size_t i = 0; i < rs.n; i++)
			if (!strcmp(rs.v[i].label, studies[k])) {
				x[n] = rs.v[i].tokens_per_s;
				y[n] = rs.v[i].tokens_per_j;
				id[n++] = rs.v[i].id;
			}
		view_pareto(x, y, n, on);
		s = prog_prep(h,
		              "SELECT on_front FROM pareto WHERE run_id = ?1");
		for (size_t i = 0; i < n; i++) {
			sqlite3_reset(s);
			sqlite3_bind_int64(s, 1, id[i]);
			cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
			cr_expect_eq(on[i], sqlite3_column_int(s, 0),
			             "run %lld", (long long)id[i]);
		}
		sqlite3_finalize(s);
	}
	view_runs_clear(&rs);
	sqlite3_close(h);
}
