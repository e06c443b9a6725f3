/* test_engine_pins.c - full AHASD and its ablation steps on the shipped
 * captures, pinned figure by figure.
 *
 * The inequalities elsewhere (EDC raises acceptance, ...) let a policy
 * drift a long way; these pins do not: every counter exactly, every time
 * and energy to 1e-12 relative, and the policy's own counters (EDC's
 * predictions, TVC's insertions). Drafters whose code is stable (fixed,
 * SVIP) keep the pins about the policy and the engine.
 *
 * A change of the model or of a policy that moves a pin must update it
 * and say why in its commit: run this program with AHASD_PIN_PRINT=1 to
 * print every case's figures as the table's initialisers (no checks
 * then), and compare them with the golden digest's change.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

/* What a case pins. Counters are exact; times and energies to 1e-12. */
struct pins {
	uint64_t accepted, wasted, preverified, preverify_tasks,
	        preverify_rejections, batches, batch_tokens, lookahead_batches,
	        verifications, switches, waits;
	double time_s, energy_j, dynamic_j, wasted_draft_s, wasted_draft_j;
	/* the policy's counters */
	double edc_predictions, edc_continue, edc_stop, edc_rollbacks,
	        tvc_insertions, tvc_tokens, tvc_keep_drafting;
};

/* One run: strings inline (fixtures.h, FX_PARAMS). */
struct pin_case {
	char name[48];
	char trace[64], preset[48], drafter[16], k[4], edc[2], tvc[2];
	struct pins want;
};

#define SKIP3         "stories260K-skip3-greedy.msgpack"
#define SKIP3_SAMPLED "stories260K-skip3-sampled.msgpack"
#define AIDREAMS      "aidreams260K-skip2-greedy.msgpack"

/* On npu-pim these 260K-parameter pairs never leave TVC time to insert a
 * pre-verification with fixed or SVIP (EDC alone decides); on gpu-pim,
 * where verification is slow against drafting, TVC inserts thousands,
 * of every length, 1 included. The ablation runs from naive async
 * (edc=0) through EDC to full AHASD on one of those. */
static const struct pin_case cases[] = {
	/* name, trace, preset, drafter, fixed's k ("" for svip), edc, tvc */
	/* pins: accepted, wasted, preverified, preverify_tasks, rejections,
	 *   batches | batch_tokens, look-ahead batches, verifications,
	 *   switches, waits | time_s, energy_j | dynamic_j, wasted_draft_s |
	 *   wasted_draft_j | edc_predictions, edc_continue, edc_stop,
	 *   edc_rollbacks, tvc_insertions, tvc_tokens, tvc_keep_drafting */
	{ "ahasd/fixed npu-pim",
	  SKIP3,
	  "npu-pim",
	  "fixed",
	  "4",
	  "1",
	  "1",
	  { 8641,
	    16305,
	    0,
	    0,
	    0,
	    6152,
	    24446,
	    79,
	    6150,
	    0,
	    5812,
	    1.9865305229580981,
	    4.1859259768801271,
	    0.80882408785136017,
	    1.0259888489857127,
	    0.47038669761407964,
	    6152,
	    340,
	    5812,
	    5260,
	    0,
	    0,
	    0 } },
	{ "ahasd/svip npu-pim",
	  SKIP3,
	  "npu-pim",
	  "svip",
	  "",
	  "1",
	  "1",
	  { 8171,
	    10977,
	    0,
	    0,
	    0,
	    13123,
	    15296,
	    6582,
	    9402,
	    0,
	    2948,
	    1.3962849608870942,
	    3.0261085158184606,
	    0.65242408231040006,
	    0.67492877197381451,
	    0.30908624230144072,
	    13123,
	    10171,
	    2952,
	    4935,
	    0,
	    0,
	    4 } },
	{ "ahasd/fixed npu-pim sampled",
	  SKIP3_SAMPLED,
	  "npu-pim",
	  "fixed",
	  "4",
	  "1",
	  "1",
	  { 9415,
	    18050,
	    0,
	    0,
	    0,
	    6782,
	    26959,
	    40,
	    6780,
	    0,
	    6482,
	    2.231063973978797,
	    4.7024873126217157,
	    0.90967855685776011,
	    1.1566308048714249,
	    0.5307448896102408,
	    6782,
	    300,
	    6482,
	    5716,
	    0,
	    0,
	    0 } },
	{ "async/fixed k=2 gpu-pim",
	  SKIP3,
	  "gpu-pim",
	  "fixed",
	  "2",
	  "0",
	  "0",
	  { 9041,
	    166036,
	    0,
	    0,
	    0,
	    88288,
	    175077,
	    82611,
	    7702,
	    0,
	    0,
	    39.491237336912384,
	    1491.0176459191985,
	    243.09454607276709,
	    33.307945140388277,
	    230.41060116700018,
	    0,
	    0,
	    0,
	    5633,
	    0,
	    0,
	    0 } },
	{ "ahasd edc/fixed k=2 gpu-pim",
	  SKIP3,
	  "gpu-pim",
	  "fixed",
	  "2",
	  "1",
	  "0",
	  { 8209,
	    33428,
	    0,
	    0,
	    0,
	    20998,
	    41637,
	    14493,
	    7552,
	    0,
	    6330,
	    12.645578750529598,
	    457.49475474758293,
	    57.894466230847605,
	    6.7055312501910551,
	    46.366330083158935,
	    20998,
	    14668,
	    6330,
	    5018,
	    0,
	    0,
	    0 } },
	{ "ahasd/fixed k=2 gpu-pim",
	  SKIP3,
	  "gpu-pim",
	  "fixed",
	  "2",
	  "1",
	  "1",
	  { 8358,
	    57006,
	    10393,
	    2705,
	    1018,
	    33464,
	    65364,
	    28125,
	    7911,
	    5410,
	    3648,
	    18.536731347765361,
	    694.37042050952221,
	    108.60970992013689,
	    11.434171349507512,
	    79.00517019087178,
	    33464,
	    23040,
	    10424,
	    5143,
	    2705,
	    10393,
	    4071 } },
	{ "ahasd/svip gpu-pim",
	  SKIP3,
	  "gpu-pim",
	  "svip",
	  "",
	  "1",
	  "1",
	  { 8322,
	    101142,
	    4804,
	    1704,
	    633,
	    92869,
	    109464,
	    87110,
	    9793,
	    3408,
	    2436,
	    28.053239428292365,
	    1046.5050473940091,
	    160.02268145997041,
	    20.284721672939799,
	    140.03402368215964,
	    92869,
	    87376,
	    5493,
	    5128,
	    1704,
	    4804,
	    1353 } },
	{ "ahasd/fixed gpu-pim aidreams",
	  AIDREAMS,
	  "gpu-pim",
	  "fixed",
	  "4",
	  "1",
	  "1",
	  { 3187,
	    11461,
	    142,
	    36,
	    7,
	    3744,
	    14648,
	    1169,
	    2630,
	    72,
	    2384,
	    3.4154859446214259,
	    117.98045154773625,
	    10.051095697699196,
	    1.7100112345473213,
	    7.7229989241698274,
	    3744,
	    1268,
	    2476,
	    2216,
	    36,
	    142,
	    56 } },
};

ParameterizedTestParameters(pins, full_ahasd)
{
	return cr_make_param_array(struct pin_case, (void *)cases,
	                           sizeof cases / sizeof *cases);
}

static void pin_count(uint64_t got, uint64_t want, const char *who,
                      const char *what)
{
	cr_assert_eq(got, want, "%s: %s %llu, pinned %llu", who, what,
	             (unsigned long long)got, (unsigned long long)want);
}

static void pin_real(double got, double want, const char *who, const char *what)
{
	cr_assert(fabs(got - want) <= 1e-12 * fabs(want),
	          "%s: %s %.17g, pinned %.17g", who, what, got, want);
}

ParameterizedTest(const struct pin_case *c, pins, full_ahasd)
{
	const char *const pk[2] = { "edc", "tvc" };
	const char *const pv[2] = { c->edc, c->tvc };
	struct rig g;
	RIG_OPEN(&g, .trace = rig_shipped(c->trace), .preset = c->preset,
	         .policy = "ahasd", .pkeys = pk, .pvals = pv, .np = 2,
	         .drafter = c->drafter, .dkey = c->k[0] ? "k" : NULL,
	         .dval = c->k);
	rig_run(&g);
	const struct replay_metrics *m = replay_metrics(g.r);
	const struct pins got = {
		m->accepted,
		m->wasted,
		m->preverified,
		m->preverify_tasks,
		m->preverify_rejections,
		m->batches,
		m->batch_tokens,
		m->lookahead_batches,
		m->verifications,
		m->switches,
		m->waits,
		m->time_s,
		m->energy_j,
		m->dynamic_j,
		m->wasted_draft_s,
		m->wasted_draft_j,
		rig_counter(&g.pol, "edc_predictions"),
		rig_counter(&g.pol, "edc_continue"),
		rig_counter(&g.pol, "edc_stop"),
		rig_counter(&g.pol, "edc_rollbacks"),
		rig_counter(&g.pol, "tvc_insertions"),
		rig_counter(&g.pol, "tvc_tokens"),
		rig_counter(&g.pol, "tvc_keep_drafting"),
	};
	const struct pins *w = &c->want;
	if (getenv("AHASD_PIN_PRINT")) {
		fprintf(stderr,
		        "\t/* %s */\n\t{ %llu, %llu, %llu, %llu, %llu, "
		        "%llu, %llu, %llu, %llu, %llu, %llu,\n\t  %.17g, "
		        "%.17g, "
		        "%.17g, %.17g, %.17g,\n\t  %.17g, %.17g, %.17g, %.17g, "
		        "%.17g, %.17g, %.17g },\n",
		        c->name, (unsigned long long)got.accepted,
		        (unsigned long long)got.wasted,
		        (unsigned long long)got.preverified,
		        (unsigned long long)got.preverify_tasks,
		        (unsigned long long)got.preverify_rejections,
		        (unsigned long long)got.batches,
		        (unsigned long long)got.batch_tokens,
		        (unsigned long long)got.lookahead_batches,
		        (unsigned long long)got.verifications,
		        (unsigned long long)got.switches,
		        (unsigned long long)got.waits, got.time_s, got.energy_j,
		        got.dynamic_j, got.wasted_draft_s, got.wasted_draft_j,
		        got.edc_predictions, got.edc_continue, got.edc_stop,
		        got.edc_rollbacks, got.tvc_insertions, got.tvc_tokens,
		        got.tvc_keep_drafting);
		rig_close(&g);
		return;
	}
	const char *who = c->name;
	pin_count(got.accepted, w->accepted, who, "accepted");
	pin_count(got.wasted, w->wasted, who, "wasted");
	pin_count(got.preverified, w->preverified, who, "preverified");
	pin_count(got.preverify_tasks, w->preverify_tasks, who,
	          "preverify_tasks");
	pin_count(got.preverify_rejections, w->preverify_rejections, who,
	          "preverify_rejections");
	pin_count(got.batches, w->batches, who, "batches");
	pin_count(got.batch_tokens, w->batch_tokens, who, "batch_tokens");
	pin_count(got.lookahead_batches, w->lookahead_batches, who,
	          "lookahead_batches");
	pin_count(got.verifications, w->verifications, who, "verifications");
	pin_count(got.switches, w->switches, who, "switches");
	pin_count(got.waits, w->waits, who, "waits");
	pin_real(got.time_s, w->time_s, who, "time_s");
	pin_real(got.energy_j, w->energy_j, who, "energy_j");
	pin_real(got.dynamic_j, w->dynamic_j, who, "dynamic_j");
	pin_real(got.wasted_draft_s, w->wasted_draft_s, who, "wasted_draft_s");
	pin_real(got.wasted_draft_j, w->wasted_draft_j, who, "wasted_draft_j");
	pin_real(got.edc_predictions, w->edc_predictions, who,
	         "edc_predictions");
	pin_real(got.edc_continue, w->edc_continue, who, "edc_continue");
	pin_real(got.edc_stop, w->edc_stop, who, "edc_stop");
	pin_real(got.edc_rollbacks, w->edc_rollbacks, who, "edc_rollbacks");
	pin_real(got.tvc_insertions, w->tvc_insertions, who, "tvc_insertions");
	pin_real(got.tvc_tokens, w->tvc_tokens, who, "tvc_tokens");
	pin_real(got.tvc_keep_drafting, w->tvc_keep_drafting, who,
	         "tvc_keep_drafting");
	rig_close(&g);
}
