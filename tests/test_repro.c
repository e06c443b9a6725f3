/* test_repro.c - the reproduction study's building blocks (issue 4):
 * model presets, the per-operator hardware numbers of one LLaMA2-13B
 * verification and one LLaMA2-7B draft step on npu-pim against a hand
 * calculation, the ablation ordering on a shipped trace, and
 * ahasd-replay --models end to end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "trace.h"

#define SHIPPED_TRACE "traces/stories260K-skip3-greedy.msgpack"
/* pinned values of our model (see the ablation test) */
#define PIN_EDC_TOK_S 5.07965087 /* tokens/s */
#define PIN_EDC_OVER_AAU (5.07965087 / 5.262472) /* 0.965 */

static void rel_eq(double got, double want, double tol, const char *what)
{
	cr_assert(fabs(got - want) <= tol * fabs(want),
	          "%s: got %.9g, want %.9g (rel. tol %g)", what, got, want,
	          tol);
}

static void load_model(struct trace_model *m, const char *name)
{
	char err[512];
	int rc = model_preset_load(m, name, err, sizeof err);
	cr_assert_eq(rc, 0, "model_preset_load(%s): %s", name, err);
}

/* ---- model presets ---- */

/* Published parameter counts (all weights, INT8 = 1 byte each):
 *   opt-1.3b    1,315,758,080  facebook/opt-1.3b checkpoint
 *   opt-6.7b    6,658,473,984  facebook/opt-6.7b checkpoint
 *   llama2-7b   6,738,415,616  meta-llama/Llama-2-7b-hf checkpoint
 *   llama2-13b 13,015,864,320  meta-llama/Llama-2-13b-hf checkpoint
 *   palm-8b     8.63e9         PaLM paper, Table 1
 *   palm-30b    30e9           the AHASD paper's nominal size
 * Our weight_bytes leave out biases and norm gains, so they sit a little
 * below; 3 % covers it. */
Test(models, weight_bytes_match_published_counts)
{
	static const struct { const char *name; double params; } cases[] = {
		{ "opt-1.3b", 1315758080.0 }, { "opt-6.7b", 6658473984.0 },
		{ "llama2-7b", 6738415616.0 }, { "llama2-13b", 13015864320.0 },
		{ "palm-8b", 8.63e9 }, { "palm-30b", 30e9 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct trace_model m;
		load_model(&m, cases[i].name);
		cr_assert_str_eq(m.name, cases[i].name);
		cr_assert_eq(m.weight_bits, 8, "%s: INT8", cases[i].name);
		rel_eq((double)m.weight_bytes, cases[i].params, 0.03,
		       cases[i].name);
		model_preset_clear(&m);
		cr_assert_null(m.ops);
	}
}

static const struct trace_op *find_op(const struct trace_model *m,
                                      const char *name)
{
	for (uint32_t i = 0; i < m->n_ops; i++)
		if (!strcmp(m->ops[i].name, name))
			return &m->ops[i];
	cr_assert_fail("%s: no op %s", m->name, name);
	return NULL;
}

Test(models, architectures_have_their_operators)
{
	struct trace_model m;
	/* OPT-1.3B: learned positions (2048 + 2 rows), fc1 2048 x 8192 with
	 * ReLU, 32 heads x 64, tied head 2048 x 50272 */
	load_model(&m, "opt-1.3b");
	cr_assert_eq(find_op(&m, "pos_embedding")->k, 2050);
	cr_assert_eq(find_op(&m, "fc1")->n, 8192);
	cr_assert_eq(find_op(&m, "fc1")->repeat, 24);
	cr_assert_eq(find_op(&m, "relu")->kind, TRACE_OP_NONLINEAR);
	cr_assert_eq(find_op(&m, "attention")->head_dim, 64);
	cr_assert_eq(find_op(&m, "lm_head")->n, 50272);
	model_preset_clear(&m);
	/* PaLM-like-30B: multi-query (1 K/V head of 256), SwiGLU 32768 */
	load_model(&m, "palm-30b");
	const struct trace_op *a = find_op(&m, "attention");
	cr_assert_eq(a->heads, 32);
	cr_assert_eq(a->kv_heads, 1);
	cr_assert_eq(a->head_dim, 256);
	cr_assert_eq(find_op(&m, "wk")->n, 256);
	cr_assert_eq(find_op(&m, "w1_gate")->n, 32768);
	cr_assert_eq(find_op(&m, "w3_up")->n, 32768);
	cr_assert_eq(find_op(&m, "w2_down")->k, 32768);
	cr_assert_eq(find_op(&m, "wq")->repeat, 30);
	model_preset_clear(&m);
	/* LLaMA: the shared llama op list */
	load_model(&m, "llama2-13b");
	cr_assert_eq(find_op(&m, "w1")->n, 13824);
	cr_assert_eq(find_op(&m, "attention")->kv_heads, 40);
	model_preset_clear(&m);
	model_preset_clear(NULL);
}

Test(models, errors_name_the_problem)
{
	struct trace_model m;
	char err[512], path[] = "/tmp/ahasd-model-XXXXXX.ini";
	int rc = model_preset_load(&m, "no-such-model", err, sizeof err);
	cr_assert_eq(rc, -ENOENT);
	cr_assert(strstr(err, "no-such-model"), "%s", err);
	int fd = mkstemps(path, 4);
	cr_assert_geq(fd, 0);
	const char body[] = "[model]\nname = x\narch = gpt\n";
	cr_assert_eq(write(fd, body, sizeof body - 1), (ssize_t)sizeof body - 1);
	close(fd);
	rc = model_preset_load(&m, path, err, sizeof err);
	unlink(path);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, ":3:") && strstr(err, "arch"), "%s", err);
}

/* ---- per-operator numbers on npu-pim ---- */

static struct hw_plan *llama_plan(const char *preset)
{
	struct hw_platform p;
	struct trace_model d, t;
	struct hw_plan *plan = NULL;
	char err[512];
	cr_assert_eq(hw_platform_load(&p, preset, err, sizeof err), 0, "%s",
	             err);
	load_model(&d, "llama2-7b");
	load_model(&t, "llama2-13b");
	cr_assert_eq(hw_plan_create(&plan, &p, &d, &t, err, sizeof err), 0,
	             "%s", err);
	model_preset_clear(&d);
	model_preset_clear(&t);
	return plan;
}

static const struct hw_op_cost *row(const struct hw_op_cost *rows, size_t n,
                                    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].op->name, name))
			return &rows[i];
	cr_assert_fail("no row %s", name);
	return NULL;
}

/* One LLaMA2-13B verification of 4 drafts (M = 5) at KV length 1024 on
 * the npu-pim NPU: peak 16e12 x util 0.5 = 8e12 ops/s, vector 8.2e12 x 0.5
 * = 4.1e12, bandwidth 51.2e9 x bw_eff 0.8 = 40.96e9 B/s, 1 us per operator,
 * 5 us per task. INT8 weights, activations and KV (1 byte each).
 *
 * wq (5120 x 5120, 40 layers), per layer:
 *   bytes   = 5120*5120 + 5*(5120+5120)          = 26,265,600 B
 *   memory  = 26,265,600 / 40.96e9               = 641.25 us
 *   compute = 2 * 5*5120*5120 / 8e12             = 32.768 us
 *   time    = 40 * (1 us + 641.25 us)            = 25.69 ms (memory-bound)
 * w1 (5120 x 13824), per layer:
 *   bytes   = 5120*13824 + 5*(5120+13824)        = 70,873,600 B
 *   memory  = 70,873,600 / 40.96e9               = 1730.3125 us
 *   time    = 40 * (1 + 1730.3125) us            = 69.2525 ms
 * attention (40 heads, 40 K/V heads, head_dim 128), L = 1024, per layer:
 *   keys K  = M L - M(M-1)/2 = 5120 - 10         = 5110
 *   bytes   = 2*1024*128*40 + 2*5*40*128         = 10,536,960 B
 *   memory  = 10,536,960 / 40.96e9               = 257.25 us
 *   compute = 2 * (2*40*128*5110) / 8e12 + 40*5110 / 4.1e12
 *           = 13.0816 us + 0.04985 us            = 13.1315 us
 *   time    = 40 * (1 + 257.25) us               = 10.33 ms
 * Whole step: 5 us + the sum of every operator's time. */
Test(hwops, llama2_13b_verification_on_npu)
{
	struct hw_plan *plan = llama_plan("npu-pim");
	const struct hw_platform *p = hw_plan_platform(plan);
	struct hw_op_cost rows[64];
	size_t n = hw_task_breakdown(plan, HW_TASK_VERIFY, 5, 1024, rows, 64);
	cr_assert_eq(n, 18);
	int npu = hw_task_device(plan, HW_TASK_VERIFY);
	cr_assert_str_eq(p->dev[npu].name, "npu");

	const struct hw_op_cost *wq = row(rows, n, "wq");
	cr_assert_eq(wq->device, npu);
	rel_eq(wq->bytes, 40 * 26265600.0, 1e-9, "wq bytes");
	rel_eq(wq->macs, 40 * 5 * 5120.0 * 5120, 1e-9, "wq macs");
	rel_eq(wq->memory_s, 40 * 641.25e-6, 1e-9, "wq memory_s");
	rel_eq(wq->compute_s, 40 * 32.768e-6, 1e-9, "wq compute_s");
	rel_eq(wq->time_s, 25.69e-3, 1e-9, "wq time");

	const struct hw_op_cost *w1 = row(rows, n, "w1");
	rel_eq(w1->bytes, 40 * 70873600.0, 1e-9, "w1 bytes");
	rel_eq(w1->time_s, 69.2525e-3, 1e-9, "w1 time");

	const struct hw_op_cost *at = row(rows, n, "attention");
	rel_eq(at->bytes, 40 * 10536960.0, 1e-9, "attention bytes");
	rel_eq(at->memory_s, 40 * 257.25e-6, 1e-9, "attention memory_s");
	rel_eq(at->compute_s, 40 * (13.0816e-6 + 204400 / 4.1e12), 1e-6,
	       "attention compute_s");
	rel_eq(at->time_s, 10.33e-3, 1e-9, "attention time");

	double sum = 5e-6;
	for (size_t i = 0; i < n; i++)
		sum += rows[i].time_s;
	struct hw_cost c;
	hw_task_cost(plan, HW_TASK_VERIFY, 5, 1024, &c);
	rel_eq(c.time_s, sum, 1e-9, "verification step = 5 us + ops");
	/* memory-bound: ~13 GB of weights at 40.96 GB/s, ~0.32 s */
	cr_assert(c.time_s > 0.31 && c.time_s < 0.33, "step %g s", c.time_s);
	hw_plan_free(&plan);
}

/* One LLaMA2-7B draft step (M = 1) at KV length 1024 on the npu-pim PIM:
 * peak 1.6384e12 x util 0.8 = 1.31072e12 ops/s, bandwidth 256e9 x bw_eff
 * 0.85 = 217.6e9 B/s, 0.5 us per operator, 2 us per task; AAU on, so every
 * operator stays in the PIM.
 * wq (4096 x 4096, 32 layers), per layer:
 *   bytes   = 4096*4096 + 1*(4096+4096)          = 16,785,408 B
 *   memory  = 16,785,408 / 217.6e9               = 77.13882 us
 *   compute = 2 * 4096*4096 / 1.31072e12         = 25.6 us
 *   time    = 32 * (0.5 + 77.13882) us           = 2.484442 ms
 * w2 (11008 x 4096), per layer:
 *   bytes   = 11008*4096 + (11008+4096)          = 45,103,872 B
 *   memory  = 45,103,872 / 217.6e9               = 207.27882 us
 *   time    = 32 * (0.5 + 207.27882) us          = 6.648922 ms
 * attention (32 heads x 128), L = 1024:
 *   bytes   = 2*1024*128*32 + 2*1*32*128         = 8,396,800 B
 *   memory  = 8,396,800 / 217.6e9                = 38.58824 us
 *   time    = 32 * (0.5 + 38.58824) us           = 1.250824 ms */
Test(hwops, llama2_7b_draft_on_pim)
{
	struct hw_plan *plan = llama_plan("npu-pim");
	const struct hw_platform *p = hw_plan_platform(plan);
	struct hw_op_cost rows[64];
	size_t n = hw_task_breakdown(plan, HW_TASK_DRAFT, 1, 1024, rows, 64);
	int pim = hw_task_device(plan, HW_TASK_DRAFT);
	cr_assert_str_eq(p->dev[pim].name, "pim");

	const struct hw_op_cost *wq = row(rows, n, "wq");
	cr_assert_eq(wq->device, pim);
	rel_eq(wq->bytes, 32 * 16785408.0, 1e-9, "wq bytes");
	rel_eq(wq->memory_s, 32 * 16785408.0 / 217.6e9, 1e-9, "wq memory_s");
	rel_eq(wq->compute_s, 32 * 25.6e-6, 1e-9, "wq compute_s");
	rel_eq(wq->time_s, 32 * (0.5e-6 + 16785408.0 / 217.6e9), 1e-9,
	       "wq time");
	rel_eq(wq->time_s, 2.484442e-3, 1e-6, "wq time (rounded)");

	const struct hw_op_cost *w2 = row(rows, n, "w2");
	rel_eq(w2->bytes, 32 * 45103872.0, 1e-9, "w2 bytes");
	rel_eq(w2->time_s, 6.648922e-3, 1e-6, "w2 time");

	const struct hw_op_cost *at = row(rows, n, "attention");
	cr_assert_eq(at->device, pim, "attention stays in the PIM (AAU)");
	rel_eq(at->bytes, 32 * 8396800.0, 1e-9, "attention bytes");
	rel_eq(at->time_s, 1.250824e-3, 1e-6, "attention time");

	double sum = 2e-6;
	for (size_t i = 0; i < n; i++)
		sum += rows[i].time_s;
	struct hw_cost c;
	hw_task_cost(plan, HW_TASK_DRAFT, 1, 1024, &c);
	rel_eq(c.time_s, sum, 1e-9, "draft step = 2 us + ops");
	/* 6.74 GB at 217.6 GB/s: ~31 ms */
	cr_assert(c.time_s > 0.030 && c.time_s < 0.032, "step %g s", c.time_s);
	hw_plan_free(&plan);
}

/* ---- the ablation on a shipped trace ---- */

struct ablation_run {
	double tok_s, tok_j, accept;
};

static struct ablation_run run_config(const char *hwp, const char *aau,
                                      const char *edc, const char *tvc)
{
	char err[1024], path[4096];
	const char *src = getenv("AHASD_SOURCE_ROOT");
	cr_assert(src, "AHASD_SOURCE_ROOT not set");
	snprintf(path, sizeof path, "%s/%s", src, SHIPPED_TRACE);
	struct trace_reader *rd = NULL;
	cr_assert_eq(trace_reader_open(&rd, path, err, sizeof err), 0, "%s",
	             err);
	struct hw_platform plat;
	cr_assert_eq(hw_platform_load(&plat, hwp, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(hw_platform_set(&plat, "aau", aau, err, sizeof err), 0,
	             "%s", err);
	struct trace_model d, t;
	load_model(&d, "llama2-7b");
	load_model(&t, "llama2-13b");
	struct hw_plan *plan = NULL;
	cr_assert_eq(hw_plan_create(&plan, &plat, &d, &t, err, sizeof err), 0,
	             "%s", err);
	const char *keys[] = { "edc", "tvc" }, *vals[] = { edc, tvc };
	struct plugin pol = { 0 }, dr = { 0 };
	cr_assert_eq(plugin_load(&pol, "ahasd", AHASD_PLUGIN_POLICY, keys,
	                         vals, 2, err, sizeof err), 0, "%s", err);
	cr_assert_eq(plugin_load(&dr, "adaedl", AHASD_PLUGIN_DRAFTER, NULL,
	                         NULL, 0, err, sizeof err), 0, "%s", err);
	struct replay_config cfg = {
		.plan = plan, .policy = &pol, .drafter = &dr, .seed = 1,
		.lookahead = trace_reader_header(rd)->lookahead,
		.queue_capacity = 32, .max_draft = 64,
	};
	struct replay *rp = NULL;
	cr_assert_eq(replay_create(&rp, &cfg, err, sizeof err), 0, "%s", err);
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(rd, &s, err, sizeof err)) == 1)
		cr_assert_eq(replay_sequence(rp, &s, NULL, err, sizeof err), 0,
		             "%s", err);
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(rp);
	const struct replay_metrics *m = replay_metrics(rp);
	struct ablation_run out = {
		(double)m->committed / m->time_s,
		(double)m->committed / m->energy_j,
		(double)m->accepted / (double)m->drafted,
	};
	replay_free(&rp);
	plugin_unload(&dr);
	plugin_unload(&pol);
	hw_plan_free(&plan);
	model_preset_clear(&d);
	model_preset_clear(&t);
	trace_reader_close(&rd);
	return out;
}

/* LLaMA2-7B -> 13B with AdaEDL, the captured stories260K-skip3 greedy
 * token stream, npu-pim. The paper's ordering: async <= +AAU <= +EDC <=
 * +TVC in throughput. Ours holds for +AAU and +TVC; +EDC lowers
 * throughput (by about 4 %) while raising energy efficiency and
 * acceptance: with a 13B verification on the NPU ten times as long as a
 * 7B draft step on the PIM, the look-ahead queue is always full, and when
 * EDC stops look-ahead the NPU sometimes waits for a fresh draft that a
 * correct look-ahead would have had ready (docs/REPRODUCTION.md). That
 * step's value is pinned. */
Test(ablation, llama2_adaedl_ordering, .timeout = 120)
{
	struct ablation_run async = run_config("npu-pim", "0", "0", "0");
	struct ablation_run aau = run_config("npu-pim", "1", "0", "0");
	struct ablation_run edc = run_config("npu-pim", "1", "1", "0");
	struct ablation_run tvc = run_config("npu-pim", "1", "1", "1");
	cr_log_info("tok/s: async %.6f aau %.6f edc %.6f tvc %.6f",
	            async.tok_s, aau.tok_s, edc.tok_s, tvc.tok_s);
	cr_log_info("tok/J: async %.6f aau %.6f edc %.6f tvc %.6f",
	            async.tok_j, aau.tok_j, edc.tok_j, tvc.tok_j);
	cr_log_info("accept: async %.6f aau %.6f edc %.6f tvc %.6f",
	            async.accept, aau.accept, edc.accept, tvc.accept);
	cr_assert_geq(aau.tok_s, async.tok_s, "+AAU lowered throughput");
	cr_assert_geq(tvc.tok_s, edc.tok_s, "+TVC lowered throughput");
	cr_assert_geq(tvc.tok_s, aau.tok_s, "full AHASD below +AAU");
	/* +EDC: our model lowers throughput; pinned (see above) */
	cr_assert_lt(edc.tok_s, aau.tok_s);
	rel_eq(edc.tok_s, PIN_EDC_TOK_S, 1e-6, "+EDC tok/s (pinned)");
	rel_eq(edc.tok_s / aau.tok_s, PIN_EDC_OVER_AAU, 1e-6,
	       "+EDC / +AAU (pinned)");
	/* EDC's purpose holds: fewer wasted drafts, more tokens per joule */
	cr_assert_gt(edc.accept, aau.accept);
	cr_assert_gt(edc.tok_j, aau.tok_j);
}

/* ---- ahasd-replay --models end to end ---- */

static int run_cmd(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli, models_retargets_and_records_it, .timeout = 120)
{
	const char *build = getenv("AHASD_BUILD_ROOT");
	const char *src = getenv("AHASD_SOURCE_ROOT");
	cr_assert(build && src);
	char db[] = "/tmp/ahasd-repro-cli-XXXXXX";
	cr_assert_not_null(mkdtemp(db));
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "%s/replay/ahasd-replay -q --db %s/r.db "
	         "-w npu-pim -p ahasd -d adaedl --models llama2-7b:llama2-13b "
	         "%s/%s", build, db, src, SHIPPED_TRACE);
	cr_assert_eq(run_cmd(cmd), 0, "%s", cmd);
	/* a bad pair and an unknown preset fail with a message */
	snprintf(cmd, sizeof cmd, "%s/replay/ahasd-replay -q --no-db "
	         "--models llama2-7b %s/%s 2>%s/e1", build, src, SHIPPED_TRACE,
	         db);
	cr_assert_eq(run_cmd(cmd), 2);
	snprintf(cmd, sizeof cmd, "%s/replay/ahasd-replay -q --no-db -p sync "
	         "--models llama2-7b:nonesuch %s/%s 2>%s/e2", build, src,
	         SHIPPED_TRACE, db);
	cr_assert_eq(run_cmd(cmd), 1);

	char path[4200];
	snprintf(path, sizeof path, "%s/r.db", db);
	sqlite3 *h;
	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT retargeted_from, "
	             "draft_model, target_model, (SELECT value FROM metrics "
	             "WHERE run_id = runs.id AND name = 'committed') FROM runs",
	             -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0),
	                 "stories260K-skip3:stories260K");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), "llama2-7b");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 2),
	                 "llama2-13b");
	/* the token stream is the trace's: 14,674 generated tokens */
	cr_assert_eq(sqlite3_column_int64(st, 3), 14674);
	cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "one run");
	sqlite3_finalize(st);
	sqlite3_close(h);

	/* the retargeted run costs what the 13B/7B presets cost: the same
	 * replay directly through the library gives the same throughput */
	struct ablation_run lib = run_config("npu-pim", "1", "1", "1");
	cr_assert_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT value FROM metrics WHERE "
	             "name = 'tokens_per_s'", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	rel_eq(sqlite3_column_double(st, 0), lib.tok_s, 1e-9,
	       "CLI --models vs library");
	sqlite3_finalize(st);
	sqlite3_close(h);
	snprintf(cmd, sizeof cmd, "rm -rf %s", db);
	run_cmd(cmd);
}
