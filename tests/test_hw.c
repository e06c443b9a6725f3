/* test_hw.c - hardware model: presets, per-operator costs, placement, AAU,
 * switch, overrides and preset errors. Presets come from AHASD_PRESET_PATH
 * (set by the test environment to replay/presets). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw.h"
#include "trace.h"

static const char *const presets[] = { "npu-pim", "npu-lpddr5", "gpu", "gpu-pim" };
#define N_PRESETS (sizeof presets / sizeof presets[0])

static void expect_rel(double got, double want, double tol, const char *what)
{
	double d = fabs(got - want), s = fabs(want) > 0 ? fabs(want) : 1;

	cr_expect(d <= tol * s, "%s: got %.17g want %.17g (rel %.3g)", what, got,
	          want, d / s);
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
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "llama-%u", dim);
	m->dim = dim;
	m->hidden_dim = hid;
	m->n_layers = layers;
	m->n_heads = heads;
	m->n_kv_heads = kvh;
	m->vocab_size = 32000;
	m->seq_len = 2048;
	m->weight_bits = 8;
	cr_assert_eq(trace_model_llama_ops(m), 0);
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
}

/* Hand calculation, npu-pim, draft task on the PIM, M = 1, L = 100.
 * PIM: matrix 1.6384e12 * util 0.8 = 1.31072e12 op/s; vector 409.6e9 * 0.8
 * = 327.68e9 op/s; memory 256e9 * 0.85 = 217.6e9 B/s; op overhead 0.5 us,
 * task overhead 2 us; INT8 weights, KV and activations (1 byte each).
 *  w (gemm 64x32, x2): MACs 2048 -> compute 2*2048/1.31072e12 = 3.125 ns;
 *     bytes 64*32 + (64+32) = 2144 -> memory 2144/217.6e9 = 9.853 ns
 *     (memory-bound): 2 * (0.5 us + 2144/217.6e9)
 *  norm (n 32, x2): 32 elements -> 0.098 ns; bytes 2*32 = 64 -> 0.294 ns:
 *     2 * (0.5 us + 64/217.6e9)
 *  attn (2 heads, 1 kv head, hd 16, x2): 1 query over 100 keys;
 *     MACs 2*2*16*100 = 6400, softmax 2*100 = 200 elements:
 *     compute 2*6400/1.31072e12 + 200/327.68e9 = 9.766 + 0.610 = 10.376 ns;
 *     bytes KV 2*100*16*1 = 3200 + q/out 2*2*16 = 64 -> 3264/217.6e9
 *     = 15.0 ns (memory-bound): 2 * (0.5 us + 3264/217.6e9)
 *  act (nonlinear n 32, x1): 1 * (0.5 us + 64/217.6e9)
 * Energy (PIM: 0.46 pJ/MAC, 3.0 pJ/vector op, 0.8 pJ/bit):
 *  MACs 2*2048 + 2*6400 = 16896; elements 2*32 + 2*200 + 32 = 496;
 *  bytes 2*2144 + 2*64 + 2*3264 + 64 = 11008. */
Test(hw, hand_calculation_draft_on_pim)
{
	struct hw_platform p;
	struct hw_plan *plan;
	struct hw_cost c;
	struct hw_op_cost rows[4];
	const double bw = 217.6e9;
	const double t_w = 2 * (0.5e-6 + 2144 / bw);
	const double t_norm = 2 * (0.5e-6 + 64 / bw);
	const double t_attn = 2 * (0.5e-6 + 3264 / bw);
	const double t_act = 1 * (0.5e-6 + 64 / bw);
	const double want_t = 2e-6 + t_w + t_norm + t_attn + t_act;
	const double want_e = (16896 * 0.46 + 496 * 3.0 + 11008 * 8 * 0.8) * 1e-12;

	load(&p, "npu-pim");
	plan = plan_for(&p, &small, &small);
	cr_expect_eq(hw_task_device(plan, HW_TASK_DRAFT), p.pim);
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 100, &c);
	expect_rel(c.time_s, want_t, 1e-9, "draft time");
	expect_rel(c.energy_j, want_e, 1e-9, "draft energy");
	expect_rel(c.energy_dev_j[p.pim], want_e, 1e-9, "pim energy");
	cr_expect_eq(c.energy_dev_j[p.compute], 0);
	expect_rel(c.busy_s[p.pim], want_t, 1e-12, "pim busy");
	cr_expect_eq(c.busy_s[p.compute], 0);

	cr_assert_eq(hw_task_breakdown(plan, HW_TASK_DRAFT, 1, 100, rows, 4), 4);
	expect_rel(rows[2].compute_s, 2 * (2 * 6400 / 1.31072e12 + 200 / 327.68e9),
	           1e-9, "attn compute");
	expect_rel(rows[2].memory_s, 2 * 3264 / bw, 1e-9, "attn memory");
	expect_rel(rows[2].macs, 2 * 6400, 1e-12, "attn macs");
	expect_rel(rows[2].bytes, 2 * 3264, 1e-12, "attn bytes");
	expect_rel(rows[0].compute_s, 2 * 2 * 2048 / 1.31072e12, 1e-9, "w compute");
	expect_rel(rows[0].time_s, t_w, 1e-9, "w time");
	cr_expect_eq(rows[0].device, p.pim);
	hw_plan_free(&plan);
	cr_expect_null(plan);
}

/* Hand calculation, npu-lpddr5, a compute-bound GEMM: 1024 x 1024, M = 256.
 * NPU: 16e12 * 0.5 = 8e12 op/s, 51.2e9 * 0.8 = 40.96e9 B/s.
 *  compute 2 * 256 * 1024 * 1024 / 8e12 = 67.1 us;
 *  memory (1024*1024 + 256*(1024+1024)) / 40.96e9 = 38.4 us -> compute.
 *  time = 5 us task + 1 us op + 67.1 us. */
Test(hw, hand_calculation_compute_bound_gemm)
{
	struct hw_platform p;
	struct hw_plan *plan;
	struct hw_cost c;
	struct hw_op_cost row;
	struct trace_op op = mkop("big", TRACE_OP_GEMM, 1024, 1024, 1);
	struct trace_model m = { .name = "big", .n_ops = 1, .ops = &op };
	const double comp = 2.0 * 256 * 1024 * 1024 / 8e12;
	const double mem = (1024.0 * 1024 + 256.0 * 2048) / 40.96e9;

	load(&p, "npu-lpddr5");
	plan = plan_for(&p, &m, &m);
	hw_task_cost(plan, HW_TASK_VERIFY, 256, 300, &c);
	expect_rel(c.time_s, 5e-6 + 1e-6 + comp, 1e-9, "time");
	cr_assert_eq(hw_task_breakdown(plan, HW_TASK_VERIFY, 256, 300, &row, 1), 1);
	expect_rel(row.compute_s, comp, 1e-9, "compute");
	expect_rel(row.memory_s, mem, 1e-9, "memory");
	cr_expect_gt(row.compute_s, row.memory_s);
	/* energy: 256M MACs * 0.23 pJ + bytes * 8 * 4 pJ */
	expect_rel(c.energy_j,
	           (256.0 * 1024 * 1024 * 0.23 +
	            (1024.0 * 1024 + 256.0 * 2048) * 8 * 4.0) * 1e-12,
	           1e-9, "energy");
	hw_plan_free(&plan);
}

/* Attention: M queries over keys L-M+1 .. L; t(L) linear for L in a range
 * where the regime does not change; energy exactly linear. */
Test(hw, linear_in_kv_length)
{
	struct trace_model d, t;

	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	for (size_t i = 0; i < N_PRESETS; i++) {
		struct hw_platform p;
		struct hw_plan *plan;

		load(&p, presets[i]);
		plan = plan_for(&p, &d, &t);
		for (int task = 0; task < HW_TASK_COUNT; task++) {
			struct hw_cost c1, c2, c3;

			hw_task_cost(plan, task, 5, 1000, &c1);
			hw_task_cost(plan, task, 5, 2000, &c2);
			hw_task_cost(plan, task, 5, 3000, &c3);
			cr_expect_gt(c2.time_s, c1.time_s);
			expect_rel(c3.time_s - c2.time_s, c2.time_s - c1.time_s, 1e-9,
			           "time slope");
			expect_rel(c3.energy_j - c2.energy_j, c2.energy_j - c1.energy_j,
			           1e-9, "energy slope");
		}
		hw_plan_free(&plan);
	}
	free(d.ops);
	free(t.ops);
}

/* The precomputed evaluation equals the per-operator rows (direct formula)
 * plus the task overhead, for every preset, task, M and L, with and without
 * the AAU. */
Test(hw, task_cost_equals_breakdown_sum)
{
	struct trace_model d, t;
	const unsigned ms[] = { 1, 2, 5, 17, HW_MAX_M };
	const unsigned ls[] = { 1, 100, 4097 };

	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	for (size_t i = 0; i < N_PRESETS; i++) {
		for (int aau = 0; aau < 2; aau++) {
			struct hw_platform p;
			struct hw_plan *plan;
			char err[256];

			load(&p, presets[i]);
			cr_assert_eq(hw_platform_set(&p, "aau", aau ? "1" : "0", err,
			                             sizeof err), 0, "%s", err);
			plan = plan_for(&p, &d, &t);
			for (int task = 0; task < HW_TASK_COUNT; task++) {
				const struct trace_model *mdl = task == HW_TASK_DRAFT ? &d : &t;
				int dev = hw_task_device(plan, task);

				for (size_t a = 0; a < 3; a++) {
					for (size_t b = 0; b < 5; b++) {
						struct hw_op_cost rows[32];
						struct hw_cost c;
						double st = p.dev[dev].task_overhead_s, se = 0;
						size_t n = hw_task_breakdown(plan, task, ms[b],
						                             ls[a], rows, 32);

						cr_assert_eq(n, mdl->n_ops);
						for (size_t r = 0; r < n; r++) {
							st += rows[r].time_s;
							se += rows[r].energy_j;
						}
						hw_task_cost(plan, task, ms[b], ls[a], &c);
						expect_rel(c.time_s, st, 1e-12, "time = rows");
						expect_rel(c.energy_j, se, 1e-12, "energy = rows");
					}
				}
			}
			hw_plan_free(&plan);
		}
	}
	free(d.ops);
	free(t.ops);
}

Test(hw, split_invariants)
{
	struct trace_model d, t;

	llama(&d, 512, 1376, 4, 8, 8);
	llama(&t, 1024, 2752, 6, 16, 4);
	for (size_t i = 0; i < N_PRESETS; i++) {
		for (int aau = 0; aau < 2; aau++) {
			struct hw_platform p;
			struct hw_plan *plan;
			char err[256];

			load(&p, presets[i]);
			cr_assert_eq(hw_platform_set(&p, "aau", aau ? "1" : "0", err,
			                             sizeof err), 0);
			plan = plan_for(&p, &d, &t);
			for (int task = 0; task < HW_TASK_COUNT; task++) {
				for (unsigned m = 1; m <= 64; m *= 4) {
					struct hw_cost s, c;
					double bsum = 0, esum = 0;

					hw_step_cost_split(plan, task, m, 700, &s);
					hw_task_cost(plan, task, m, 700, &c);
					for (unsigned dv = 0; dv < p.n_dev; dv++) {
						cr_expect_geq(s.time_s, s.busy_s[dv] * (1 - 1e-12));
						bsum += s.busy_s[dv];
						esum += s.energy_dev_j[dv];
					}
					cr_expect_geq(s.time_s, bsum * (1 - 1e-12));
					expect_rel(s.energy_j, esum, 1e-12, "split energy sum");
					if (p.n_dev == 1) {
						expect_rel(s.time_s, c.time_s, 1e-12, "1-dev time");
						expect_rel(s.energy_j, c.energy_j, 1e-12, "1-dev energy");
						expect_rel(s.busy_s[0], c.busy_s[0], 1e-12, "1-dev busy");
					}
				}
			}
			hw_plan_free(&plan);
		}
	}
	free(d.ops);
	free(t.ops);
}

/* Split on npu-pim without the AAU, model [w gemm 64x32, norm 32] x 2, M = 1:
 * w is memory-bound and the PIM (0.5 us + 2144/217.6e9) beats the NPU
 * (1 us + 2144/40.96e9); the norm may not run on the PIM, so it runs on the
 * NPU: 1 us + max(32/4.1e12, 64/40.96e9). Transfers: w -> norm twice
 * (1 * 32 bytes) and norm -> w once (wrap to the next layer, 64 bytes), each
 * bytes/51.2e9 + 1 us. Time = busy(pim) + busy(npu) + transfers; busy(npu)
 * includes the 5 us task overhead of the compute device. */
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
	const double pim_busy = 2 * (0.5e-6 + 2144 / 217.6e9);
	const double npu_busy = 5e-6 + 2 * (1e-6 + 64 / 40.96e9);
	const double xfer = 2 * (32 / 51.2e9 + 1e-6) + (64 / 51.2e9 + 1e-6);

	load(&p, "npu-pim");
	cr_assert_eq(hw_platform_set(&p, "aau", "0", err, sizeof err), 0);
	plan = plan_for(&p, &m, &m);
	hw_step_cost_split(plan, HW_TASK_DRAFT, 1, 10, &s);
	expect_rel(s.busy_s[p.pim], pim_busy, 1e-9, "pim busy");
	expect_rel(s.busy_s[p.compute], npu_busy, 1e-9, "npu busy");
	expect_rel(s.time_s, pim_busy + npu_busy + xfer, 1e-9, "time");
	hw_plan_free(&plan);

	/* with the AAU the norm stays on the PIM: no transfers at all */
	cr_assert_eq(hw_platform_set(&p, "aau", "1", err, sizeof err), 0);
	plan = plan_for(&p, &m, &m);
	hw_step_cost_split(plan, HW_TASK_DRAFT, 1, 10, &s);
	expect_rel(s.time_s, s.busy_s[0] + s.busy_s[1], 1e-12, "no transfer");
	hw_plan_free(&plan);
}

Test(hw, aau_off_slows_pim_draft_and_charges_npu)
{
	struct hw_platform p;
	struct hw_plan *on, *off;
	struct hw_cost a, b;
	char err[256];
	/* small model, draft M = 1, L = 100: shipped without AAU are norm (x2),
	 * attention softmax (x2) and act (x1). Each adds two link transfers of
	 * 2 * bytes; norm/act: 2 * 32 bytes -> 64/51.2e9 + 2 us; softmax: 200
	 * scores -> 2*200/51.2e9 + 2 us. NPU runs norm/act with 1 us + 64/40.96e9
	 * and the softmax with 1 us + max(200/4.1e12, 400/40.96e9); the PIM no
	 * longer runs norm/act (it saves 0.5 us + 64/217.6e9 each) and its
	 * attention loses the softmax compute (still memory-bound). */
	const double ship_na = 64 / 51.2e9 + 2e-6 + 1e-6 + 64 / 40.96e9;
	const double ship_sm = 400 / 51.2e9 + 2e-6 + 1e-6 + 400 / 40.96e9;
	const double saved = 0.5e-6 + 64 / 217.6e9;
	const double delta = 3 * (ship_na - saved) + 2 * ship_sm;

	load(&p, "npu-pim");
	on = plan_for(&p, &small, &small);
	cr_assert_eq(hw_platform_set(&p, "aau", "0", err, sizeof err), 0);
	off = plan_for(&p, &small, &small);
	hw_task_cost(on, HW_TASK_DRAFT, 1, 100, &a);
	hw_task_cost(off, HW_TASK_DRAFT, 1, 100, &b);
	cr_expect_gt(b.time_s, a.time_s);
	expect_rel(b.time_s - a.time_s, delta, 1e-9, "aau delta");
	cr_expect_eq(a.energy_dev_j[p.compute], 0);
	cr_expect_gt(b.energy_dev_j[p.compute], 0);
	cr_expect_lt(b.energy_dev_j[p.pim], a.energy_dev_j[p.pim]);
	cr_expect_eq(b.busy_s[p.compute], 0);
	expect_rel(b.busy_s[p.pim], b.time_s, 1e-15, "busy = time");
	/* verification on the NPU does not care */
	hw_task_cost(on, HW_TASK_VERIFY, 5, 100, &a);
	hw_task_cost(off, HW_TASK_VERIFY, 5, 100, &b);
	expect_rel(b.time_s, a.time_s, 1e-15, "verify unchanged");
	hw_plan_free(&on);
	hw_plan_free(&off);
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
	cr_assert_eq(hw_platform_set(&p, "gated_switch", "0", err, sizeof err), 0);
	plan = plan_for(&p, &small, &small);
	expect_rel(hw_switch_cost(plan, NULL), 10e-6, 1e-15, "slow");
	hw_plan_free(&plan);
	cr_assert_eq(hw_platform_set(&p, "switch_slow_s", "3e-5", err, sizeof err), 0);
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
	cr_assert_eq(hw_platform_set(&p, "pim.mem_bw", "512e9", err, sizeof err), 0,
	             "%s", err);
	cr_expect_eq(p.dev[p.pim].mem_bw, 512e9);
	plan = plan_for(&p, &small, &small);
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 4000, &b);
	cr_expect_lt(b.time_s, a.time_s);
	hw_plan_free(&plan);
	cr_assert_eq(hw_platform_describe(&p, desc, sizeof desc), 0);
	cr_expect_not_null(strstr(desc, "pim.mem_bw = 512000000000\n"), "%s", desc);
	cr_expect_not_null(strstr(desc, "npu.kind = npu\n"));
	cr_expect_not_null(strstr(desc, "aau = 1\n"));
	cr_expect_eq(hw_platform_describe(&p, desc, 16), -ENOSPC);

	cr_expect_eq(hw_platform_set(&p, "nosuchkey", "1", err, sizeof err), -EINVAL);
	cr_expect_not_null(strstr(err, "nosuchkey"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "npu.nosuch", "1", err, sizeof err), -EINVAL);
	cr_expect_not_null(strstr(err, "nosuch"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "tpu.util", "1", err, sizeof err), -EINVAL);
	cr_expect_not_null(strstr(err, "tpu"), "%s", err);
	cr_expect_eq(hw_platform_set(&p, "npu.util", "1.5", err, sizeof err), -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "npu.util", "x", err, sizeof err), -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "aau", "2", err, sizeof err), -EINVAL);
	cr_expect_eq(hw_platform_set(&p, "npu.kind", "pim", err, sizeof err), -EINVAL);
	/* failed sets leave the platform untouched */
	cr_expect_eq(p.dev[p.compute].util, 0.5);
	cr_expect_eq(p.dev[p.compute].kind, HW_DEV_NPU);
}

static char tmpdir[256];
static char written[32][512];
static size_t n_written;

static const char *write_preset(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/test-hw-XXXXXX");
		cr_assert_not_null(mkdtemp(tmpdir));
	}
	snprintf(path, sizeof path, "%s/%s.ini", tmpdir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	if (n_written < 32)
		snprintf(written[n_written++], sizeof written[0], "%s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

#define GOOD_PLATFORM \
	"[platform]\nname = t\nweight_bits = 8\nkv_bits = 8\nact_bits = 8\n" \
	"aau = 1\ngated_switch = 1\nswitch_gated_s = 5e-7\nswitch_slow_s = 1e-5\n" \
	"link_bw = 51.2e9\nlink_latency_s = 1e-6\nlink_pj_per_bit = 4\n" \
	"queue_latency_s = 0\n"
#define GOOD_DEVICE \
	"[device npu]\nkind = npu\nfreq_hz = 1e9\nmatrix_ops = 16e12\n" \
	"vector_ops = 8.2e12\nutil = 0.5\nmem_bw = 51.2e9\nbw_eff = 0.8\n" \
	"op_overhead_s = 1e-6\ntask_overhead_s = 5e-6\npj_per_mac = 0.23\n" \
	"pj_per_vec_op = 1.5\npj_per_bit = 4\nstatic_w = 0.6\n"

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
	setenv("AHASD_PRESET_PATH", tmpdir, 1);
	cr_expect_str_eq(hw_preset_dir(), tmpdir);
	cr_assert_eq(hw_platform_load(&p, "good", err, sizeof err), 0, "%s", err);
	cr_expect_eq(hw_platform_load(&p, "absent", err, sizeof err), -ENOENT);
	cr_expect_not_null(strstr(err, "absent.ini"), "%s", err);

	/* GOOD_PLATFORM is 13 lines, so the next line is 14 */
	expect_load_error("unknown", GOOD_PLATFORM "bogus = 1\n" GOOD_DEVICE,
	                  "14:bogus");
	/* bad number: [device] on 14, kind 15, freq_hz 16 */
	expect_load_error("badnum",
	                  GOOD_PLATFORM "[device npu]\nkind = npu\nfreq_hz = 1e9x\n",
	                  "16:freq_hz");
	/* missing key: reported at the section header's line */
	expect_load_error("missing",
	                  GOOD_PLATFORM "[device npu]\nkind = npu\nfreq_hz = 1e9\n",
	                  "14:matrix_ops");
	expect_load_error("missing_platform",
	                  "[platform]\nname = t\nweight_bits = 8\n" GOOD_DEVICE,
	                  "1:kv_bits");
	expect_load_error("range", GOOD_PLATFORM "[device npu]\nkind = npu\n"
	                  "freq_hz = 1e9\nmatrix_ops = 16e12\nvector_ops = 1\n"
	                  "util = 0\n", "19:util");
	expect_load_error("kind", GOOD_PLATFORM "[device npu]\nkind = tpu\n",
	                  "15:kind");
	expect_load_error("dup", GOOD_PLATFORM "aau = 0\n" GOOD_DEVICE, "14:aau");
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
	cr_expect_eq(p.dev[0].freq_hz, 1e9);   /* inherited */
	expect_load_error("late_base", "[platform]\nname = d\nbase = good\n",
	                  "3:base");
	expect_load_error("bad_base", "[platform]\nbase = absent\n",
	                  "2:base: base preset");
	expect_load_error("dup_override", "[platform]\nbase = good\nname = d\n"
	                  "[device npu]\nutil = 0.4\nutil = 0.3\n", "6:util");
	expect_load_error("self", "[platform]\nbase = self\n",
	                  "2:base: preset");
	unsetenv("AHASD_PRESET_PATH");
	for (size_t i = 0; i < n_written; i++)
		unlink(written[i]);
	cr_expect_eq(rmdir(tmpdir), 0, "rmdir %s", tmpdir);
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
