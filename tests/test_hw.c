/* test_hw.c - hardware model: presets, per-operator costs, placement, AAU,
 * switch, overrides and preset errors. Presets come from AHASD_PRESET_PATH
 * (set by the test environment to replay/presets). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures.h"
#include "hw.h"
#include "trace.h"

static const char *const presets[] = {
	"npu-pim",
	"npu-lpddr5",
	"gpu",
	"gpu-pim",
	"npu-pim-total",
	/* the AHASD authors' released configurations */
	"artifact-npu-only",
	"artifact-gpu-only",
	"artifact-ahasd",
	"artifact-specpim",
	"artifact-edge-npu-only",
	"artifact-edge-gpu",
	"artifact-edge-ahasd",
	"artifact-edge-specpim",
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static void expect_rel(double got, double want, double tol, const char *what)
{
	double d = fabs(got - want), s = fabs(want) > 0 ? fabs(want) : 1;

	cr_expect(d <= tol * s, "%s: got %.17g want %.17g (rel %.3g)", what,
	          got, want, d / s);
}

static struct trace_op mkop(const char *name, enum trace_op_kind kind,
                            uint32_t k, uint32_t n, uint32_t repeat)
{
	struct trace_op op;

	memset(&op, 0, sizeof op);
	snprintf(op.name, sizeof op.name, "%s", name);
	op.kind = kind;
	op.k = k;
	op.n = n;
	op.repeat = repeat;
	return op;
}

/* The hand-built model: one "layer" of 3 ops repeated twice, then a final
 * nonlinear op. */
static struct trace_op small_ops[4];
static struct trace_model small;

static void build_small(void)
{
	small_ops[0] = mkop("w", TRACE_OP_GEMM, 64, 32, 2);
	small_ops[1] = mkop("norm", TRACE_OP_NORM, 0, 32, 2);
	small_ops[2] = mkop("attn", TRACE_OP_ATTENTION, 0, 0, 2);
	small_ops[2].heads = 2;
	small_ops[2].kv_heads = 1;
	small_ops[2].head_dim = 16;
	small_ops[3] = mkop("act", TRACE_OP_NONLINEAR, 0, 32, 1);
	memset(&small, 0, sizeof small);
	snprintf(small.name, sizeof small.name, "small");
	small.n_ops = 4;
	small.ops = small_ops;
}

static void load(struct hw_platform *p, const char *name)
{
	char err[512] = "";
	int rc = hw_platform_load(p, name, err, sizeof err);

	cr_assert_eq(rc, 0, "load %s: %s", name, err);
}

static struct hw_plan *plan_for(const struct hw_platform *p,
                                const struct trace_model *d,
                                const struct trace_model *t)
{
	struct hw_plan *plan = NULL;
	char err[512] = "";
	int rc = hw_plan_create(&plan, p, d, t, err, sizeof err);

	cr_assert_eq(rc, 0, "plan: %s", err);
	return plan;
}

static void llama(struct trace_model *m, uint32_t dim, uint32_t hid,
                  uint32_t layers, uint32_t heads, uint32_t kvh)
{
	char name[32];

	snprintf(name, sizeof name, "llama-%u", dim);
	fx_llama_model(
	        m, name,
	        (struct fx_dims){ dim, hid, layers, heads, kvh, 32000, 2048 });
}

TestSuite(hw, .init = build_small);

Test(hw, all_presets_load)
{
	struct hw_platform p;

	for (size_t i = 0; i < N_PRESETS; i++) {
		load(&p, presets[i]);
		cr_expect_str_eq(p.name, presets[i]);
		cr_expect_geq(p.compute, 0);
	}
	load(&p, "npu-pim");
	cr_expect_eq(p.n_dev, 2);
	cr_expect_eq(p.pim, 1);
	cr_expect_eq(p.dev[p.pim].kind, HW_DEV_PIM);
	cr_expect_eq(p.aau, 1);
	load(&p, "gpu");
	cr_expect_eq(p.n_dev, 1);
	cr_expect_eq(p.pim, -1);
	cr_expect_eq(p.dev[0].kind, HW_DEV_GPU);
	load(&p, "npu-lpddr5");
	cr_expect_eq(p.pim, -1);
	load(&p, "gpu-pim");
	cr_expect_eq(p.pim, 1);
	cr_expect_eq(p.aau, 0);
	/* the synchronous baseline each preset stands for */
	cr_expect_eq(p.sync_placement, HW_SYNC_SPECPIM);
	cr_expect_eq(p.dev[p.compute].count, 2);
	load(&p, "npu-pim");
	cr_expect_eq(p.sync_placement, HW_SYNC_TASK);
	load(&p, "artifact-specpim");
	cr_expect_eq(p.sync_placement, HW_SYNC_SPECPIM);
	cr_expect_eq(p.weight_bits, 16);
	/* inherited: the artifact's 409.6 GB/s PIM runs at its 800 MHz */
	expect_rel(p.dev[p.pim].freq_hz, 0.8e9, 1e-12, "artifact PIM clock");
	expect_rel(p.switch_gated_s, 55e-9, 1e-12, "GTSU 55 ns");
}

/* Where the synchronous schedule puts the models on each preset: with
 * task placement the draft step runs on the draft device and the
 * verification on the compute device; with one device both on it. */
Test(hw, sync_placement_per_preset)
{
	struct trace_model d, t;
	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	for (size_t i = 0; i < N_PRESETS; i++) {
		struct hw_platform p;
		load(&p, presets[i]);
		struct hw_plan *plan = plan_for(&p, &d, &t);
		struct hw_cost s;
		hw_step_cost(plan, HW_TASK_VERIFY, 5, 300, &s);
		if (p.sync_placement == HW_SYNC_TASK) {
			/* the target's step is the compute device's alone */
			cr_expect_gt(s.busy_s[p.compute], 0, "%s", presets[i]);
			if (p.pim >= 0)
				cr_expect_eq(s.busy_s[p.pim], 0, "%s",
				             presets[i]);
			hw_step_cost(plan, HW_TASK_DRAFT, 1, 300, &s);
			const int dd = p.pim >= 0 ? p.pim : p.compute;
			expect_rel(s.busy_s[dd], s.time_s, 1e-12, presets[i]);
		} else {
			/* an operator split uses both devices */
			cr_expect_gt(s.busy_s[p.compute], 0, "%s", presets[i]);
			cr_expect_gt(s.busy_s[p.pim], 0, "%s", presets[i]);
		}
		hw_plan_free(&plan);
	}
	free(d.ops);
	free(t.ops);
}

/* ---- PIM: PIMSimulator's all-bank GEMV (HWMODEL.md derives each term) ----
 *
 * npu-pim's PIM, cycles of its command clock f = 256e9 x 6 / (16 ranks x 2
 * blocks x 32 B) = 1.5 GHz. tCCD* = max(tCCD_L 6, BL/2 4) = 6. INT8: 32
 * lanes per burst. A 2 KB row holds 64 bursts, so a tile (8 x 8 bursts)
 * needs R = 1 row. Turnarounds: R2W = 22 + 4 + 1 - 16 = 11, W2R = 16 + 4 +
 * 12 = 32, R2P = 4 + max(12, 6) - 6 = 10, W2P = 16 + 4 + 24 = 44.
 *   T_grf  = 7 x 6 = 42                      (8 GRF_A writes)
 *   T_mac  = (64 - 1) x 6 = 378              (64 MAC commands, one row)
 *   g_out  = max(11, 32 + 1 - 6) = 27
 *   g_in   = max(32, 27, 10 + 32 + 32 - 42 - 27) = 32
 *   T_even = 42 + 32 + 378 + 27 = 479
 *   T_odd  = 42 + max(44, 64 - 32 - 42) + 32 + 32 + 378 + 10 + 32 + 32 = 602
 *   X      = 7 x 6 + 44 + 32 + 32 = 150      (GRF_B write-back, reopen)
 *   F_ref  = 1 + (560 + 32 + 32) / 6240 = 1.1
 * A 4096 x 4096 GEMV on all 16 ranks: Ni = 4096 / (8 x 32) = 16 input
 * tiles (8 even, 8 odd), No = 4096 / (8 x 2 x 16) = 16 passes:
 *   T_pass = 150 + 8 x 479 + 8 x 602 = 8798; cycles = 16 x 8798 x 1.1.
 * These are the per-tile constants PIMSimulator itself shows with these
 * timings (479, 602, 150). */
#define PIM_F       1.5e9
#define PIM_GEMV_4K (16 * 8798 * 1.1 / PIM_F)

static struct hw_op_cost op_on(const char *preset, const char *dev_name,
                               struct trace_op op, unsigned m, unsigned kv,
                               unsigned ranks)
{
	struct hw_platform p;
	struct hw_op_cost r;
	char err[256] = "";
	load(&p, preset);
	int dev = !strcmp(dev_name, "pim") ? p.pim : p.compute;
	cr_assert_eq(
	        hw_op_eval(&p, dev, &op, m, kv, ranks, &r, err, sizeof err), 0,
	        "%s", err);
	return r;
}

Test(hw, pim_gemv_follows_pimsimulator_tiles)
{
	struct trace_op g = mkop("g", TRACE_OP_GEMM, 4096, 4096, 1);
	struct hw_platform p;
	load(&p, "npu-pim");
	expect_rel(p.dev[p.pim].freq_hz, PIM_F, 1e-12, "derived clock");
	struct hw_op_cost r1 = op_on("npu-pim", "pim", g, 1, 1, 0);
	expect_rel(r1.time_s, PIM_GEMV_4K, 1e-12, "GEMV time");
	cr_expect_eq(r1.bound, HW_BOUND_COMMAND);
	/* bytes: every MAC command reads one 32 B burst in each of the 2
	 * blocks of 16 ranks (16 passes x 16 tiles x 64 commands), plus the
	 * 8 GRF_A loads per tile: 1024 x (16384 + 2048) */
	expect_rel(r1.bytes, 1024.0 * (16384 + 2048), 1e-12, "bytes");
	/* energy: 0.46 pJ per MAC (4096 x 4096, no padding) + 0.8 pJ/bit */
	expect_rel(r1.energy_j,
	           (4096.0 * 4096 * 0.46 + 1024.0 * 18432 * 8 * 0.8) * 1e-12,
	           1e-12, "energy");
	/* M vectors: PIMKernel.cpp loops over vectors inside each output
	 * tile and re-reads every weight: exactly M GEMVs */
	struct hw_op_cost r4 = op_on("npu-pim", "pim", g, 4, 1, 0);
	expect_rel(r4.time_s, 4 * PIM_GEMV_4K, 1e-12, "GEMM M=4");
	/* on 2 of the 16 ranks: 8x the passes */
	struct hw_op_cost r2 = op_on("npu-pim", "pim", g, 1, 1, 2);
	expect_rel(r2.time_s, 8 * PIM_GEMV_4K, 1e-12, "2 ranks");
	/* padding: K is padded to whole 256-input tiles and N to whole
	 * 256-row passes, and the padding is executed: 1000 x 100 costs
	 * exactly 1024 x 256 */
	struct hw_op_cost pa = op_on("npu-pim", "pim",
	                             mkop("a", TRACE_OP_GEMM, 1000, 100, 1), 1,
	                             1, 0);
	struct hw_op_cost pb = op_on("npu-pim", "pim",
	                             mkop("b", TRACE_OP_GEMM, 1024, 256, 1), 1,
	                             1, 0);
	expect_rel(pa.time_s, pb.time_s, 1e-15, "padding");
	/* 1024 x 256: Ni = 4, No = 1: 150 + 2 x 479 + 2 x 602 = 2312 */
	expect_rel(pb.time_s, 2312 * 1.1 / PIM_F, 1e-12, "small GEMV");
}

/* A PIM that holds v input vectors (vector_buffers, a hypothetical
 * design; PIMSimulator holds one) serves them in one pass: each MAC
 * command then does v vectors' multiply-adds, at 2 x 2 blocks x 32 lanes
 * x 16 ranks x 1.5e9 / 1.6384e12 = 1.875 ALU cycles per vector, so with
 * v = 4 a command takes max(6, 7.5) = 7.5 cycles; GRF_A/GRF_B hold 4x:
 *   T_grf = 31 x 6 = 186, T_mac = 63 x 7.5 = 472.5,
 *   g_in = max(32, 27, 74 - 186 - 27) = 32, T_even = 186 + 32 + 472.5 +
 *   27 = 717.5, T_odd = 186 + 44 + 64 + 472.5 + 10 + 64 = 840.5,
 *   X = 31 x 6 + 108 = 294, T_pass = 294 + 8 x (717.5 + 840.5) = 12758. */
Test(hw, pim_vector_buffers_share_a_pass)
{
	struct hw_platform p;
	struct hw_op_cost r;
	char err[256];
	struct trace_op g = mkop("g", TRACE_OP_GEMM, 4096, 4096, 1);
	load(&p, "npu-pim");
	cr_assert_eq(
	        hw_platform_set(&p, "pim.vector_buffers", "4", err, sizeof err),
	        0, "%s", err);
	cr_assert_eq(hw_op_eval(&p, p.pim, &g, 4, 1, 0, &r, err, sizeof err),
	             0);
	expect_rel(r.time_s, 16 * 12758 * 1.1 / PIM_F, 1e-12, "4 held");
	/* 5 vectors: a pass of 4 and a pass of 1 */
	cr_assert_eq(hw_op_eval(&p, p.pim, &g, 5, 1, 0, &r, err, sizeof err),
	             0);
	expect_rel(r.time_s, 16 * (12758 + 8798) * 1.1 / PIM_F, 1e-12, "4 + 1");
}

/* npu-pim-total reads "102.4 GOPS" as the whole PIM: 2 x 2 x 32 x 16 x
 * 1.5e9 / 102.4e9 = 30 ALU cycles per MAC command, above tCCD* = 6, so
 * the ALUs bound the GEMV: T_mac = 63 x 30 = 1890, T_even = 42 + 32 +
 * 1890 + 27 = 1991, T_odd = 42 + 44 + 64 + 1890 + 10 + 64 = 2114,
 * T_pass = 150 + 8 x (1991 + 2114) = 32990. */
Test(hw, pim_gops_readings)
{
	struct trace_op g = mkop("g", TRACE_OP_GEMM, 4096, 4096, 1);
	struct hw_op_cost t = op_on("npu-pim-total", "pim", g, 1, 1, 0);
	expect_rel(t.time_s, 16 * 32990 * 1.1 / PIM_F, 1e-12, "total reading");
	cr_expect_eq(t.bound, HW_BOUND_COMPUTE);
	struct hw_op_cost u = op_on("npu-pim", "pim", g, 1, 1, 0);
	cr_expect_eq(u.bound, HW_BOUND_COMMAND);
	expect_rel(t.time_s / u.time_s, 32990.0 / 8798, 1e-12, "ratio");
}

/* ---- NPU: ONNXim's weight-stationary GEMM ----
 * npu-pim's NPU: D = 64, 16e12 / (2 x 64^2 x 1e9) = 1.953 arrays (2
 * cores), 512 KiB accumulator per core. gemm_mapping (src/Mapping.cc):
 * accumulator rows 524288 / (64 x 8) = 1024, 1024 / 64 = 16 blocks,
 * ij = floor(sqrt(16)) = 4. M = 5, K = 4096, N = 11008:
 *   tile_J = min(172, ceil(11008 / 256) = 43) = 43; 43 tiles % 2 cores
 *   = 1 -> 44; inner_J = floor(ceil(11008 / 44) = 251 / 64) x 64 = 192;
 *   tile_J = ceil(11008 / 192) = 58.
 *   bytes = 4096 x 11008 (weights once) + 58 x 5 x 4096 (activations per
 *   output tile) + 5 x 11008 (outputs) = 45,088,768 + 1,187,840 + 55,040
 *   = 46,331,648; memory 46,331,648 / (51.2e9 x 0.85) = 1064.62 us.
 *   compute (weight preloads) 1 x 64 x 172 x 64 / (1.953125 x 1e9) =
 *   360.71 us; drain tail (4096 + 3 x 64 + 5 - 3) / 1e9 = 4.29 us.
 *   time = 1064.62 + 4.29 us, memory-bound. */
Test(hw, npu_gemm_follows_onnxim_tiles)
{
	struct trace_op g = mkop("w1", TRACE_OP_GEMM, 4096, 11008, 1);
	struct hw_op_cost r = op_on("npu-pim", "npu", g, 5, 1, 0);
	const double bytes = 45088768.0 + 1187840 + 55040;
	expect_rel(r.bytes, bytes, 1e-12, "bytes");
	expect_rel(r.memory_s, bytes / (51.2e9 * 0.85), 1e-12, "memory");
	expect_rel(r.compute_s, 64.0 * 172 * 64 / 1.953125e9, 1e-12, "compute");
	expect_rel(r.time_s, bytes / (51.2e9 * 0.85) + 4290e-9, 1e-12, "time");
	cr_expect_eq(r.bound, HW_BOUND_MEMORY);
	/* activations are re-read per output tile: at M = 64 they add
	 * 58 x 64 x 4096 = 15.2 MB, a third of the weights */
	struct hw_op_cost r64 = op_on("npu-pim", "npu", g, 64, 1, 0);
	expect_rel(r64.bytes, 45088768.0 + 58.0 * 64 * 4096 + 64.0 * 11008,
	           1e-12, "M=64 bytes");
}

/* The precomputed evaluation equals the per-operator rows plus the task's
 * fixed costs, for every preset, task, M and L, with and without the
 * AAU. Fixed: the device's task overhead; a PIM task also enters and
 * leaves PIM mode (mode_cycles x F_ref / f); a GPU pair also synchronises
 * twice per layer. */
/* One case per preset (an index into presets[]: parameters hold no
 * pointers, fixtures.h says why). */
ParameterizedTestParameters(hw, task_cost_equals_breakdown_sum)
{
	static size_t idx[N_PRESETS];
	for (size_t i = 0; i < N_PRESETS; i++)
		idx[i] = i;
	return FX_PARAMS(size_t, idx, N_PRESETS);
}

ParameterizedTest(size_t *preset, hw, task_cost_equals_breakdown_sum)
{
	struct trace_model d, t;
	const unsigned ms[] = { 1, 2, 5, 17, HW_MAX_M };
	const unsigned ls[] = { 1, 100, 4097 };
	const size_t i = *preset;

	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	for (int aau = 0; aau < 2; aau++) {
		struct hw_platform p;
		struct hw_plan *plan;
		char err[256];

		load(&p, presets[i]);
		cr_assert_eq(hw_platform_set(&p, "aau", aau ? "1" : "0", err,
		                             sizeof err),
		             0, "%s", err);
		plan = plan_for(&p, &d, &t);
		for (int task = 0; task < HW_TASK_COUNT; task++) {
			const struct trace_model *mdl = task == HW_TASK_DRAFT
			                                        ? &d
			                                        : &t;
			int dev = hw_task_device(plan, task);
			double fixed = p.dev[dev].task_overhead_s;
			if (dev == p.pim) {
				const struct hw_device *pd = &p.dev[p.pim];
				fixed += pd->mode_cycles *
				         (1.0 + (double)(pd->t_rfc + pd->t_rp +
				                         pd->t_rcd_rd) /
				                        pd->t_refi) /
				         pd->freq_hz;
			} else if (p.dev[dev].count > 1) {
				fixed += 2.0 * 6 * p.dev[dev].tp_sync_s;
			}
			for (size_t a = 0; a < 3; a++) {
				for (size_t b = 0; b < 5; b++) {
					struct hw_op_cost rows[32];
					struct hw_cost c;
					double st = fixed, se = 0;
					size_t n = hw_task_breakdown(
					        plan, task, ms[b], ls[a], rows,
					        32);

					cr_assert_eq(n, mdl->n_ops);
					for (size_t r = 0; r < n; r++) {
						st += rows[r].time_s;
						se += rows[r].energy_j;
					}
					hw_task_cost(plan, task, ms[b], ls[a],
					             &c);
					expect_rel(c.time_s, st, 1e-12,
					           "time = rows");
					expect_rel(c.energy_j, se, 1e-12,
					           "energy = rows");
				}
			}
		}
		hw_plan_free(&plan);
	}
	free(d.ops);
	free(t.ops);
}

/* The done-when figure of the dataflow work: on the PIM a pass over 4
 * tokens costs about 4 one-token passes (3x to 4.5x), for the whole
 * pre-verification task of a LLaMA-shaped model (GEMMs 4x, attention 4x,
 * the task's fixed costs once). */
Test(hw, pim_preverify_of_4_costs_about_4_of_1)
{
	struct trace_model d, t;
	struct hw_platform p;
	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 4096, 11008, 32, 32, 32);
	load(&p, "npu-pim");
	struct hw_plan *plan = plan_for(&p, &d, &t);
	struct hw_cost c1, c4;
	hw_task_cost(plan, HW_TASK_PREVERIFY, 1, 512, &c1);
	hw_task_cost(plan, HW_TASK_PREVERIFY, 4, 512, &c4);
	const double r = c4.time_s / c1.time_s;
	cr_expect(r >= 3.0 && r <= 4.5, "M=4 / M=1 = %g", r);
	cr_expect_gt(r, 3.99, "fixed costs are tiny next to a 7B-class pass");
	hw_plan_free(&plan);
	free(d.ops);
	free(t.ops);
}

ParameterizedTestParameters(hw, split_invariants)
{
	static size_t idx[N_PRESETS];
	for (size_t i = 0; i < N_PRESETS; i++)
		idx[i] = i;
	return FX_PARAMS(size_t, idx, N_PRESETS);
}

ParameterizedTest(size_t *preset, hw, split_invariants)
{
	struct trace_model d, t;
	const size_t i = *preset;

	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	static const char *const placements[] = { "task", "specpim", "best" };
	for (int pl = 0; pl < 3; pl++) {
		struct hw_platform p;
		struct hw_plan *plan;
		char err[256];

		load(&p, presets[i]);
		cr_assert_eq(hw_platform_set(&p, "sync_placement",
		                             placements[pl], err, sizeof err),
		             0);
		plan = plan_for(&p, &d, &t);
		for (int task = 0; task < HW_TASK_COUNT; task++) {
			for (unsigned m = 1; m <= 64; m *= 4) {
				struct hw_cost s, c;
				double esum = 0;

				hw_step_cost(plan, task, m, 700, &s);
				hw_task_cost(plan, task, m, 700, &c);
				for (unsigned dv = 0; dv < p.n_dev; dv++) {
					cr_expect_geq(s.time_s,
					              s.busy_s[dv] *
					                      (1 - 1e-12));
					esum += s.energy_dev_j[dv];
				}
				expect_rel(s.energy_j, esum, 1e-12,
				           "split energy sum");
				if (p.n_dev == 1 || pl == 0) {
					expect_rel(s.time_s, c.time_s, 1e-12,
					           "task time");
					expect_rel(s.energy_j, c.energy_j,
					           1e-12, "task energy");
				}
			}
		}
		hw_plan_free(&plan);
	}
	free(d.ops);
	free(t.ops);
}

/* Split on npu-pim with the best split, model [w gemm 64x32, norm 32] x 2,
 * M = 1: w on the PIM costs one pass of one input tile on 16 ranks,
 * 150 + 479 = 629 cycles x 1.1 / 1.5 GHz = 461.27 ns, against the NPU's
 * 64 x 32 bytes + 64 in + 32 out = 2144 B / 43.52 GB/s + drain (64 + 192 +
 * 4 - 3) ns = 306.3 ns: the NPU wins; the norm is a vector op, 1 us + 64 B
 * / 43.52 GB/s on the NPU against 0 + 64 B / 128 GB/s on the PIM: the PIM
 * wins (the model has 8 of the 16 ranks: 128 GB/s). Transfers: w -> norm
 * twice (32 B) and norm -> w once (the wrap to
 * the next layer, 64 B), each bytes / 51.2 GB/s + 1 us. The PIM enters
 * PIM mode (579 x 1.1 / 1.5 GHz) and pays its 2 us task overhead; the
 * NPU its 5 us. */
Test(hw, split_hand_calculation_transfers)
{
	struct hw_platform p;
	struct hw_plan *plan;
	struct hw_cost s;
	struct trace_op ops[2] = {
		mkop("w", TRACE_OP_GEMM, 64, 32, 2),
		mkop("norm", TRACE_OP_NORM, 0, 32, 2),
	};
	struct trace_model m = { .name = "tiny", .n_ops = 2, .ops = ops };
	char err[256];
	const double w_npu = 2144 / 43.52e9 + 257e-9;
	const double norm_pim = 64 / 128e9;
	const double npu_busy = 5e-6 + 2 * w_npu;
	const double pim_busy = 2e-6 + 579 * 1.1 / PIM_F + 2 * norm_pim;
	const double xfer = 2 * (32 / 51.2e9 + 1e-6) + (64 / 51.2e9 + 1e-6);

	load(&p, "npu-pim");
	cr_assert_eq(
	        hw_platform_set(&p, "sync_placement", "best", err, sizeof err),
	        0);
	plan = plan_for(&p, &m, &m);
	hw_step_cost(plan, HW_TASK_DRAFT, 1, 10, &s);
	expect_rel(s.busy_s[p.pim], pim_busy, 1e-9, "pim busy");
	expect_rel(s.busy_s[p.compute], npu_busy, 1e-9, "npu busy");
	expect_rel(s.time_s, pim_busy + npu_busy + xfer, 1e-9, "time");
	hw_plan_free(&plan);
	/* task placement: the draft model on the PIM, nothing crosses */
	cr_assert_eq(
	        hw_platform_set(&p, "sync_placement", "task", err, sizeof err),
	        0);
	plan = plan_for(&p, &m, &m);
	hw_step_cost(plan, HW_TASK_DRAFT, 1, 10, &s);
	cr_expect_eq(s.busy_s[p.compute], 0);
	hw_plan_free(&plan);
}

/* SpecPIM maps each operator once (at M = sync_ref_tokens for
 * verification) and keeps it: a verification of 1 token runs every
 * operator where the mapping for 9 put it, so it can only be slower than
 * the best split at M = 1, and equal to it at M = 9, L = sync_ref_kv. */
Test(hw, specpim_mapping_is_fixed)
{
	struct trace_model d, t;
	struct hw_platform p;
	char err[256];
	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 4096, 11008, 8, 32, 32);
	load(&p, "gpu-pim");
	cr_expect_eq(p.sync_placement, HW_SYNC_SPECPIM);
	struct hw_plan *sp = plan_for(&p, &d, &t);
	cr_assert_eq(
	        hw_platform_set(&p, "sync_placement", "best", err, sizeof err),
	        0);
	struct hw_plan *best = plan_for(&p, &d, &t);
	struct hw_cost a, b;
	hw_step_cost(sp, HW_TASK_VERIFY, 9, 1024, &a);
	hw_step_cost(best, HW_TASK_VERIFY, 9, 1024, &b);
	expect_rel(a.time_s, b.time_s, 1e-12, "at the mapping's point");
	for (unsigned m = 1; m <= 64; m *= 2) {
		hw_step_cost(sp, HW_TASK_VERIFY, m, 300, &a);
		hw_step_cost(best, HW_TASK_VERIFY, m, 300, &b);
		cr_expect_geq(a.time_s, b.time_s * (1 - 1e-12), "m=%u", m);
	}
	hw_plan_free(&sp);
	hw_plan_free(&best);
	free(d.ops);
	free(t.ops);
}

/* Without the AAU a PIM draft ships its norms, activation and softmax to
 * the NPU (small model, M = 1, L = 100): norm x2 and act: 2 transfers of
 * 32 B and 2 latencies each, the NPU doing 1 us + max(32 / 4.1e12, 64 B /
 * 43.52 GB/s); the softmax x2: 2 x 100 scores go out and come back
 * (2 x 200 B, 2 latencies), the NPU doing 1 us + 200 / 4.1e12. What the
 * NPU does is busy_s[npu]; the PIM waits for it and the transfers. */
Test(hw, aau_off_ships_work_to_the_npu)
{
	struct hw_platform p;
	struct hw_plan *on, *off;
	struct hw_cost a, b;
	char err[256];
	const double npu_na = 1e-6 + 64 / 43.52e9;
	const double npu_sm = 1e-6 + 200 / 4.1e12;
	const double x_na = 64 / 51.2e9 + 2e-6, x_sm = 400 / 51.2e9 + 2e-6;
	/* on the PIM with the AAU: norm/act 0 + 64 B / 128 GB/s each and the
	 * softmax 200 / 204.8e9 inside attention: the draft has 8 of the 16
	 * ranks (two equal models split them evenly), so half the bandwidth
	 * and half the AAUs */
	const double pim_na = 64 / 128e9, pim_sm = 200 / 204.8e9;

	load(&p, "npu-pim");
	on = plan_for(&p, &small, &small);
	cr_assert_eq(hw_platform_set(&p, "aau", "0", err, sizeof err), 0);
	off = plan_for(&p, &small, &small);
	hw_task_cost(on, HW_TASK_DRAFT, 1, 100, &a);
	hw_task_cost(off, HW_TASK_DRAFT, 1, 100, &b);
	expect_rel(b.busy_s[p.compute], 3 * npu_na + 2 * npu_sm, 1e-9,
	           "work the NPU gains");
	cr_expect_eq(a.busy_s[p.compute], 0);
	expect_rel(b.time_s - a.time_s,
	           3 * (npu_na + x_na - pim_na) + 2 * (npu_sm + x_sm - pim_sm),
	           1e-6, "the PIM waits for it");
	expect_rel(b.busy_s[p.pim], b.time_s, 1e-15, "PIM held throughout");
	cr_expect_gt(b.energy_dev_j[p.compute], 0);
	/* the "attention" reading moves the KV reads too: more NPU work */
	cr_assert_eq(hw_platform_set(&p, "aau_offload", "attention", err,
	                             sizeof err),
	             0);
	struct hw_plan *att = plan_for(&p, &small, &small);
	struct hw_cost c;
	hw_task_cost(att, HW_TASK_DRAFT, 1, 100, &c);
	cr_expect_gt(c.busy_s[p.compute], b.busy_s[p.compute]);
	/* verification on the NPU does not change */
	hw_task_cost(on, HW_TASK_VERIFY, 5, 100, &a);
	hw_task_cost(off, HW_TASK_VERIFY, 5, 100, &b);
	expect_rel(b.time_s, a.time_s, 1e-15, "verify unchanged");
	hw_plan_free(&on);
	hw_plan_free(&off);
	hw_plan_free(&att);
}

/* Ranks of the LLaMA-2 7B/13B pair on npu-pim (INT8; KV for the 13B's
 * 4096-token context: 7B 2 x 32 x 4096 B = 262,144 B per token, 1.074 GB;
 * 13B 2 x 40 x 5120 = 409,600 B per token, 1.678 GB):
 *   capacity: ceil((6.738 + 1.074) / 4) = 2 and ceil((13.016 + 1.678) / 4)
 *             = 4 ranks; ranks 0-1 on channels 0-1, 2-5 on all 4;
 *   all:      the draft's share 7.812 / 22.506 x 16 = 5.55 -> 6 ranks,
 *             the target 10;
 *   striped:  both on all 16.
 * What a verification keeps of the bandwidth (pim_bus_block 2/3) while
 * the PIM drafts: a channel where a draft rank works keeps 1/3 - all
 * channels under "all" and 2 of 4 under "capacity", and the slowest
 * channel sets the pace: 1/3 either way; while it pre-verifies (in the
 * target's own ranks) or works striped: nothing. */
Test(hw, pim_ranks_and_contention)
{
	struct trace_model d, t;
	llama(&d, 4096, 11008, 32, 32, 32);
	llama(&t, 5120, 13824, 40, 40, 40);
	d.weight_bits = t.weight_bits = 8;
	d.weight_bytes = 6738415616ull;
	t.weight_bytes = 13015864320ull;
	d.seq_len = t.seq_len = 4096;
	static const struct {
		const char *set[2];
		unsigned rd, rt, cd, ct;
		double beta_draft, beta_pre;
	} cases[] = {
		{ { "pim_rank_alloc=capacity", NULL }, 2, 4, 2, 4, 1.0 / 3, 0 },
		{ { "pim_rank_alloc=all", NULL }, 6, 10, 4, 4, 1.0 / 3, 0 },
		{ { "pim_layout=striped", NULL }, 16, 16, 4, 4, 0, 0 },
		{ { "pim_bus_block=0", NULL }, 6, 10, 4, 4, 1, 0 },
		{ { "pim_rank_alloc=capacity", "pim_draft_ranks=1" },
		  1,
		  4,
		  1,
		  4,
		  0,
		  0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct hw_platform p;
		struct hw_plan *plan = NULL;
		struct hw_plan_info in;
		char err[256];
		load(&p, "npu-pim");
		for (int k = 0; k < 2 && cases[i].set[k]; k++) {
			char kv[64];
			snprintf(kv, sizeof kv, "%s", cases[i].set[k]);
			char *eq = strchr(kv, '=');
			*eq = '\0';
			cr_assert_eq(hw_platform_set(&p, kv, eq + 1, err,
			                             sizeof err),
			             0, "%s", err);
		}
		int rc = hw_plan_create(&plan, &p, &d, &t, err, sizeof err);
		if (i == 4) {
			/* one rank cannot hold 7.8 GB */
			cr_expect_eq(rc, -EINVAL);
			cr_expect_not_null(strstr(err, "pim_draft_ranks"), "%s",
			                   err);
			continue;
		}
		cr_assert_eq(rc, 0, "%s", err);
		hw_plan_get_info(plan, &in);
		expect_rel(in.draft_kv_bytes, 262144.0 * 4096, 1e-12, "7B KV");
		expect_rel(in.target_kv_bytes, 409600.0 * 4096, 1e-12,
		           "13B KV");
		cr_expect_eq(in.draft_ranks, cases[i].rd, "case %zu", i);
		cr_expect_eq(in.target_ranks, cases[i].rt, "case %zu", i);
		cr_expect_eq(in.draft_channels, cases[i].cd, "case %zu", i);
		cr_expect_eq(in.target_channels, cases[i].ct, "case %zu", i);
		expect_rel(hw_compute_bw_share(plan, HW_TASK_DRAFT) + 1,
		           cases[i].beta_draft + 1, 1e-4, "beta draft");
		expect_rel(hw_compute_bw_share(plan, HW_TASK_PREVERIFY) + 1,
		           cases[i].beta_pre + 1, 1e-12, "beta preverify");
		cr_expect_eq(hw_compute_bw_share(plan, HW_TASK_VERIFY), 1);
		hw_plan_free(&plan);
	}
	free(d.ops);
	free(t.ops);
}

/* What a verification takes while the PIM works (npu-pim, a target of
 * one 4096 x 4096 GEMM, memory-bound on the NPU: 16.78 MB / 43.52 GB/s,
 * drain 4.29 us, plus 5 us per task): while the PIM drafts it streams at
 * the share the draft's ranks leave, so T_mem / beta; while it
 * pre-verifies the target's own ranks are in PIM mode: it cannot stream
 * at all, unless the PIM is non-blocking. */
Test(hw, verification_while_the_pim_works)
{
	struct trace_op top = mkop("g", TRACE_OP_GEMM, 4096, 4096, 1);
	struct trace_op dop = mkop("d", TRACE_OP_GEMM, 1024, 1024, 1);
	struct trace_model t = { .name = "t", .n_ops = 1, .ops = &top };
	struct trace_model d = { .name = "d", .n_ops = 1, .ops = &dop };
	struct hw_platform p;
	char err[256];
	load(&p, "npu-pim");
	struct hw_plan *plan = plan_for(&p, &d, &t);
	const double beta = hw_compute_bw_share(plan, HW_TASK_DRAFT);
	cr_assert(beta > 0 && beta < 1, "%g", beta);
	struct hw_op_cost r = op_on("npu-pim", "npu", top, 1, 1, 0);
	cr_assert_eq(r.bound, HW_BOUND_MEMORY);
	const double tail = (4096 + 192 + 4 - 3) * 1e-9;
	struct hw_cost c;
	hw_task_cost(plan, HW_TASK_VERIFY, 1, 1, &c);
	expect_rel(c.time_s, 5e-6 + r.memory_s + tail, 1e-12, "full speed");
	expect_rel(c.time_while_s[0], 5e-6 + r.memory_s / beta + tail, 1e-12,
	           "while drafting");
	cr_expect(isinf(c.time_while_s[1]), "while pre-verifying: %g",
	          c.time_while_s[1]);
	/* a PIM task itself is not slowed */
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 1, &c);
	cr_expect_eq(c.time_while_s[0], c.time_s);
	hw_plan_free(&plan);
	cr_assert_eq(hw_platform_set(&p, "pim_blocking", "0", err, sizeof err),
	             0);
	plan = plan_for(&p, &d, &t);
	hw_task_cost(plan, HW_TASK_VERIFY, 1, 1, &c);
	const double b2 = hw_compute_bw_share(plan, HW_TASK_PREVERIFY);
	expect_rel(c.time_while_s[1], 5e-6 + r.memory_s / b2 + tail, 1e-12,
	           "non-blocking PIM");
	hw_plan_free(&plan);
}

/* Memory capacity on gpu (16 GB, PCIe 4.0 x16 at 25 GB/s + 10 us): with
 * KV for 4096 tokens the LLaMA pair needs 6.738 + 13.016 + 1.074 + 1.678
 * = 22.506 GB; resident are both KV caches and the draft, then 16 - 2.752
 * - 6.738 = 6.510 GB of the target; 6.506 GB streams on every target
 * pass: 6.506e9 / 25e9 + 10 us = 260.25 ms, which the overlapped pass
 * time cannot hide; the GPU is busy for all of it, and the streamed bits
 * cost the host link's pJ/bit. A pair that fits streams nothing. */
Test(hw, capacity_streams_the_target_overflow)
{
	struct trace_model d, t;
	llama(&d, 4096, 11008, 32, 32, 32);
	llama(&t, 5120, 13824, 40, 40, 40);
	d.weight_bits = t.weight_bits = 8;
	d.weight_bytes = 6738415616ull;
	t.weight_bytes = 13015864320ull;
	d.seq_len = t.seq_len = 4096;
	struct hw_platform p;
	struct hw_plan_info in;
	char err[512];
	load(&p, "gpu");
	struct hw_plan *plan = plan_for(&p, &d, &t);
	hw_plan_get_info(plan, &in);
	const double stream = 6738415616.0 + 13015864320.0 + 262144.0 * 4096 +
	                      409600.0 * 4096 - 16e9;
	cr_expect_eq(in.draft_stream_bytes, 0);
	expect_rel(in.target_stream_bytes, stream, 1e-12, "stream bytes");
	struct hw_cost c;
	hw_task_cost(plan, HW_TASK_VERIFY, 5, 1000, &c);
	expect_rel(c.offload_bytes, stream, 1e-12, "offload per pass");
	expect_rel(c.time_s, stream / 25e9 + 10e-6, 1e-12, "stream-bound pass");
	/* the GPU is occupied by the stream for the whole pass */
	expect_rel(c.busy_s[p.compute], c.time_s, 1e-12, "busy streaming");
	const double overlapped_j = c.energy_j;
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 1000, &c);
	cr_expect_eq(c.offload_bytes, 0);
	hw_plan_free(&plan);
	/* not overlapped: the pass plus the stream */
	struct hw_cost base;
	struct hw_platform q = p;
	cr_assert_eq(hw_platform_set(&q, "memory_bytes", "0", err, sizeof err),
	             0);
	plan = plan_for(&q, &d, &t);
	hw_task_cost(plan, HW_TASK_VERIFY, 5, 1000, &base);
	cr_expect_eq(base.offload_bytes, 0);
	hw_plan_free(&plan);
	cr_assert_eq(
	        hw_platform_set(&p, "offload_overlap", "0", err, sizeof err),
	        0);
	plan = plan_for(&p, &d, &t);
	hw_task_cost(plan, HW_TASK_VERIFY, 5, 1000, &c);
	expect_rel(c.time_s, base.time_s + stream / 25e9 + 10e-6, 1e-12,
	           "serial");
	expect_rel(c.busy_s[p.compute],
	           base.busy_s[p.compute] + stream / 25e9 + 10e-6, 1e-12,
	           "busy: the pass, then the stream");
	/* the streamed bits cost the host link's energy, overlapped or not */
	expect_rel(c.energy_j - base.energy_j,
	           stream * 8 * p.host_link_pj_per_bit * 1e-12, 1e-9,
	           "stream energy");
	expect_rel(overlapped_j, c.energy_j, 1e-12, "overlap saves no energy");
	cr_expect_gt(p.host_link_pj_per_bit, 0);
	hw_plan_free(&plan);
	/* a hard error instead, naming the sizes */
	cr_assert_eq(hw_platform_set(&p, "capacity_policy", "error", err,
	                             sizeof err),
	             0);
	cr_expect_eq(hw_plan_create(&plan, &p, &d, &t, err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "22.5 GB"), "%s", err);
	/* npu-pim has no host link: the same pair fits its 64 GB, but not 16 */
	load(&p, "npu-pim");
	cr_assert_eq(
	        hw_platform_set(&p, "memory_bytes", "16e9", err, sizeof err),
	        0);
	cr_expect_eq(hw_plan_create(&plan, &p, &d, &t, err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "host link"), "%s", err);
	free(d.ops);
	free(t.ops);
}

Test(hw, gated_and_slow_switch)
{
	struct hw_platform p;
	struct hw_plan *plan;
	char err[256];
	double e = -1;

	load(&p, "npu-pim");
	plan = plan_for(&p, &small, &small);
	expect_rel(hw_switch_cost(plan, &e), 0.5e-6, 1e-15, "gated");
	cr_expect_eq(e, 0);
	hw_plan_free(&plan);
	cr_assert_eq(hw_platform_set(&p, "gated_switch", "0", err, sizeof err),
	             0);
	plan = plan_for(&p, &small, &small);
	expect_rel(hw_switch_cost(plan, NULL), 10e-6, 1e-15, "slow");
	hw_plan_free(&plan);
	cr_assert_eq(
	        hw_platform_set(&p, "switch_slow_s", "3e-5", err, sizeof err),
	        0);
	plan = plan_for(&p, &small, &small);
	expect_rel(hw_switch_cost(plan, NULL), 30e-6, 1e-15, "slow override");
	hw_plan_free(&plan);
	load(&p, "gpu");
	plan = plan_for(&p, &small, &small);
	cr_expect_eq(hw_switch_cost(plan, &e), 0);
	cr_expect_eq(hw_task_device(plan, HW_TASK_DRAFT), 0);
	cr_expect_eq(hw_task_device(plan, HW_TASK_PREVERIFY), 0);
	hw_plan_free(&plan);
}

Test(hw, overrides)
{
	struct hw_platform p;
	char err[256] = "", desc[8192];
	struct hw_plan *plan;
	struct hw_cost a, b;

	load(&p, "npu-pim");
	plan = plan_for(&p, &small, &small);
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 4000, &a);
	hw_plan_free(&plan);
	cr_assert_eq(
	        hw_platform_set(&p, "pim.mem_bw", "512e9", err, sizeof err), 0,
	        "%s", err);
	cr_expect_eq(p.dev[p.pim].mem_bw, 512e9);
	plan = plan_for(&p, &small, &small);
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 4000, &b);
	cr_expect_lt(b.time_s, a.time_s);
	hw_plan_free(&plan);
	cr_assert_eq(hw_platform_describe(&p, desc, sizeof desc), 0);
	cr_expect_not_null(strstr(desc, "pim.mem_bw = 512000000000\n"), "%s",
	                   desc);
	cr_expect_not_null(strstr(desc, "npu.kind = npu\n"));
	cr_expect_not_null(strstr(desc, "aau = 1\n"));
	cr_expect_eq(hw_platform_describe(&p, desc, 16), -ENOSPC);

	cr_expect_eq(hw_platform_set(&p, "nosuchkey", "1", err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "nosuchkey"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "npu.nosuch", "1", err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "nosuch"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "tpu.util", "1", err, sizeof err),
	             -EINVAL);
	cr_expect_not_null(strstr(err, "tpu"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "npu.util", "1.5", err, sizeof err),
	             -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "npu.util", "x", err, sizeof err),
	             -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "aau", "2", err, sizeof err), -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "npu.kind", "pim", err, sizeof err),
	             -EINVAL);
	/* failed sets leave the platform untouched */
	cr_expect_eq(p.dev[p.compute].util, 0.5);
	cr_expect_eq(p.dev[p.compute].kind, HW_DEV_NPU);
}

static char written[32][512];
static size_t n_written;

static const char *write_preset(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	if (!fx_dir[0])
		fx_tmpdir_make("hw");
	snprintf(path, sizeof path, "%s/%s.ini", fx_dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	if (n_written < 32)
		snprintf(written[n_written++], sizeof written[0], "%s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

#define GOOD_PLATFORM                                                        \
	"[platform]\nname = t\nweight_bits = 8\nkv_bits = 8\nact_bits = 8\n" \
	"aau = 1\ngated_switch = 1\nswitch_gated_s = 5e-7\nswitch_slow_s = " \
	"1e-5\n"                                                             \
	"link_bw = 51.2e9\nlink_latency_s = 1e-6\nlink_pj_per_bit = 4\n"     \
	"queue_latency_s = 0\n"
#define GOOD_DEVICE                                                         \
	"[device npu]\nkind = npu\nfreq_hz = 1e9\nmatrix_ops = 16e12\n"     \
	"vector_ops = 8.2e12\nutil = 0.5\nmem_bw = 51.2e9\nbw_eff = 0.8\n"  \
	"op_overhead_s = 1e-6\ntask_overhead_s = 5e-6\npj_per_mac = 0.23\n" \
	"pj_per_vec_op = 1.5\npj_per_bit = 4\nstatic_w = 0.6\n"             \
	"array_dim = 64\naccum_bytes = 524288\n"

static void expect_load_error(const char *name, const char *text,
                              const char *needle)
{
	struct hw_platform p;
	char err[512] = "", want[600];
	const char *path = write_preset(name, text);

	cr_expect_eq(hw_platform_load(&p, path, err, sizeof err), -EINVAL,
	             "%s should fail", name);
	snprintf(want, sizeof want, "%s:%s", path, needle);
	cr_expect_not_null(strstr(err, want), "%s: '%s' lacks '%s'", name, err,
	                   want);
}

Test(hw, preset_file_errors)
{
	struct hw_platform p;
	char err[512] = "";
	const char *path;

	/* the good file loads; by path and by name through AHASD_PRESET_PATH */
	path = write_preset("good", "# comment\n" GOOD_PLATFORM GOOD_DEVICE);
	cr_assert_eq(hw_platform_load(&p, path, err, sizeof err), 0, "%s", err);
	cr_expect_eq(p.n_dev, 1);
	cr_expect_eq(p.dev[0].mem_bw, 51.2e9);
	cr_expect_str_eq(p.path, path);
	/* a search path: each directory in order, then the built-in presets */
	char search[600];
	snprintf(search, sizeof search, "/nonexistent-ahasd:%s", fx_dir);
	setenv("AHASD_PRESET_PATH", search, 1);
	cr_assert_eq(hw_platform_load(&p, "good", err, sizeof err), 0, "%s",
	             err);
	cr_expect_str_eq(p.path, path);
	/* a name only the built-in directory has falls through to it */
	cr_assert_eq(hw_platform_load(&p, "gpu", err, sizeof err), 0, "%s",
	             err);
	cr_expect_not_null(strstr(p.path, hw_preset_dir()), "%s", p.path);
	/* a file in the search path shadows the built-in one of that name */
	const char *shadow = write_preset("gpu", GOOD_PLATFORM GOOD_DEVICE);
	cr_assert_eq(hw_platform_load(&p, "gpu", err, sizeof err), 0, "%s",
	             err);
	cr_expect_str_eq(p.path, shadow);
	cr_expect_eq(p.dev[0].mem_bw, 51.2e9);
	cr_expect_eq(hw_platform_load(&p, "absent", err, sizeof err), -ENOENT);
	cr_expect_not_null(strstr(err, "'absent' not found"), "%s", err);
	cr_expect_not_null(strstr(err, fx_dir), "%s", err);

	/* GOOD_PLATFORM is 13 lines, so the next line is 14 */
	expect_load_error("unknown", GOOD_PLATFORM "bogus = 1\n" GOOD_DEVICE,
	                  "14:bogus");
	/* bad number: [device] on 14, kind 15, freq_hz 16 */
	expect_load_error("badnum",
	                  GOOD_PLATFORM
	                  "[device npu]\nkind = npu\nfreq_hz = 1e9x\n",
	                  "16:freq_hz");
	/* missing key: reported at the section header's line */
	expect_load_error("missing",
	                  GOOD_PLATFORM
	                  "[device npu]\nkind = npu\nfreq_hz = 1e9\n",
	                  "14:matrix_ops");
	expect_load_error("missing_platform",
	                  "[platform]\nname = t\nweight_bits = 8\n" GOOD_DEVICE,
	                  "1:kv_bits");
	expect_load_error("range",
	                  GOOD_PLATFORM
	                  "[device npu]\nkind = npu\n"
	                  "freq_hz = 1e9\nmatrix_ops = 16e12\nvector_ops = 1\n"
	                  "util = 0\n",
	                  "19:util");
	expect_load_error("kind", GOOD_PLATFORM "[device npu]\nkind = tpu\n",
	                  "15:kind");
	expect_load_error("dup", GOOD_PLATFORM "aau = 0\n" GOOD_DEVICE,
	                  "14:aau");
	expect_load_error("section", GOOD_PLATFORM "[devices]\n", "14:");
	expect_load_error("noeq", GOOD_PLATFORM "link_bw 5\n", "14:");
	expect_load_error("nodevice", GOOD_PLATFORM, "");

	/* inheritance: "base" loads another preset first; this file renames
	 * it and overrides one key of a device the base defined. Line 3 is
	 * the override. */
	path = write_preset("derived", "[platform]\nbase = good\nname = d\n"
	                               "[device npu]\nmem_bw = 102.4e9\n");
	cr_assert_eq(hw_platform_load(&p, path, err, sizeof err), 0, "%s", err);
	cr_expect_str_eq(p.name, "d");
	cr_expect_str_eq(p.path, path);
	cr_expect_eq(p.n_dev, 1);
	cr_expect_eq(p.dev[0].mem_bw, 102.4e9);
	cr_expect_eq(p.dev[0].freq_hz, 1e9); /* inherited */
	expect_load_error("late_base", "[platform]\nname = d\nbase = good\n",
	                  "3:base");
	expect_load_error("bad_base", "[platform]\nbase = absent\n",
	                  "2:base: base preset");
	expect_load_error("dup_override",
	                  "[platform]\nbase = good\nname = d\n"
	                  "[device npu]\nutil = 0.4\nutil = 0.3\n",
	                  "6:util");
	expect_load_error("self", "[platform]\nbase = self\n",
	                  "2:base: preset");
	unsetenv("AHASD_PRESET_PATH");
	for (size_t i = 0; i < n_written; i++)
		unlink(written[i]);
	/* the loader left nothing beside the presets written */
	cr_expect_eq(rmdir(fx_dir), 0, "rmdir %s", fx_dir);
	fx_dir[0] = '\0';
}

Test(hw, plan_rejects_bad_models)
{
	struct hw_platform p;
	struct hw_plan *plan = (struct hw_plan *)&p;
	struct trace_op op = mkop("attn", TRACE_OP_ATTENTION, 0, 0, 1);
	struct trace_model bad = { .name = "bad", .n_ops = 1, .ops = &op };
	struct trace_model empty = { .name = "empty" };
	char err[256] = "";

	load(&p, "npu-pim");
	cr_expect_eq(hw_plan_create(&plan, &p, &bad, &small, err, sizeof err),
	             -EINVAL);
	cr_expect_null(plan);
	cr_expect_not_null(strstr(err, "attn"), "%s", err);
	cr_expect_eq(hw_plan_create(&plan, &p, &small, &empty, err, sizeof err),
	             -EINVAL);
	hw_plan_free(&plan);
	hw_plan_free(NULL);
}
