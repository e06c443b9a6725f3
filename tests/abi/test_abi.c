/* test_abi.c - the plugin ABI grows without breaking plugins
 * (policies/ahasd_plugin.h, "HOW THIS ABI GROWS").
 *
 * What each test proves:
 *  - abi.old_builds_run_as_new: abi_probe.c built against the frozen ABI-1,
 *    2 and 3 headers (tests/abi/v1, v2, v3) and the current one loads
 *    under this host, in every pairing of policy and drafter builds, and
 *    every pairing gives the same results and counters, bit for bit: the
 *    host hands each build the same values in the layout it was built with
 *    (the probes hash every field of every hook call), takes its decisions
 *    back intact, and gives an ABI-3 or 4 build every default an old build
 *    sets in C. Rules 1, 5 and 6.
 *  - abi.old_builds_with_user_params: the same with parameters set by the
 *    user; an old build gets only those, as it was promised.
 *  - abi.old_example_plugin: the example plugin exactly as it was at ABI 2
 *    (tests/abi/v2/greedy_lookahead.c, built against the ABI-2 header) and
 *    today's example give the same results: a plugin nobody rebuilt.
 *  - abi.cxx_plugin: the probe compiled as C++ against the current header
 *    (extern "C", exported descriptor) runs as its C build; skipped when
 *    meson found no C++ compiler.
 *  - abi.hook_past_struct_size_not_called: a hook table whose struct_size
 *    ends before a hook (a table from an older header) never has that hook
 *    called, even with a pointer there (rule 4).
 *  - abi.descriptor_checks: versions outside [MIN, current], a descriptor
 *    too short, a missing required hook and a parameter without a default
 *    are refused before any plugin code runs, with the reason.
 *  - abi.create_gets_version_and_every_key: create() gets the host's ABI
 *    version and every declared key in table order, the user's last value
 *    or the default, and the run record shows the same (rule 5).
 *  - abi.structs_begin_with_their_size: layout checks of rule 2.
 *  - abi.needs_since_abi_4: the descriptor field ABI 4 appended is read
 *    only within struct_size: builds of ABI 1 to 3 need nothing, built-in
 *    plugins declare AHASD_NEEDS_ENTROPY, and instance_needs follows a
 *    plugin's parameters (ahasd edc=0 needs nothing).
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hw.h"
#include "plugin.h"
#include "trace.h"

#define TRACE        "traces/stories260K-skip3-sampled.msgpack"
#define MAX_COUNTERS 128

/* ---- running a replay ------------------------------------------------ */

struct params {
	const char *keys[4];
	const char *vals[4];
	size_t n;
};

struct outcome {
	struct replay_metrics m;
	char names[MAX_COUNTERS][96];
	double vals[MAX_COUNTERS];
	size_t n;
};

static const char *build_path(const char *name)
{
	static char path[8][1024];
	static unsigned next;
	char *p = path[next++ % 8];
	const char *b = getenv("AHASD_BUILD_ROOT");

	cr_assert_not_null(b, "AHASD_BUILD_ROOT is not set (run through meson "
	                      "test)");
	snprintf(p, sizeof path[0], "%s/tests/abi/%s.so", b, name);
	return p;
}

/* Replay TRACE on npu-pim with two loaded plugins; their counters land in
 * o as "policy.NAME" and "drafter.NAME". */
static void run_loaded(struct plugin *pol, struct plugin *dr, struct outcome *o)
{
	char err[1024], trace[1024];
	struct trace_reader *rd = NULL;
	struct hw_platform plat;
	struct hw_plan *plan = NULL;
	struct replay *r = NULL;
	struct trace_seq s;
	int rc;

	snprintf(trace, sizeof trace, "%s/" TRACE, getenv("AHASD_SOURCE_ROOT"));
	cr_assert_eq(trace_reader_open(&rd, trace, err, sizeof err), 0, "%s",
	             err);
	const struct trace_header *h = trace_reader_header(rd);
	cr_assert_eq(hw_platform_load(&plat, "npu-pim", err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(hw_plan_create(&plan, &plat, &h->draft, &h->target, err,
	                            sizeof err),
	             0, "%s", err);
	const struct replay_config cfg = {
		.plan = plan,
		.policy = pol,
		.drafter = dr,
		.seed = 1,
		.lookahead = h->lookahead,
		.queue_capacity = 32,
		.max_draft = 64,
	};
	cr_assert_eq(replay_create(&r, &cfg, err, sizeof err), 0, "%s", err);
	while ((rc = trace_reader_next(rd, &s, err, sizeof err)) == 1)
		cr_assert_eq(replay_sequence(r, &s, NULL, err, sizeof err), 0,
		             "%s", err);
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(r);
	memset(o, 0, sizeof *o);
	o->m = *replay_metrics(r);
	cr_assert_eq(plugin_counters(pol, "policy", o->names, o->vals, &o->n,
	                             MAX_COUNTERS, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(plugin_counters(dr, "drafter", o->names, o->vals, &o->n,
	                             MAX_COUNTERS, err, sizeof err),
	             0, "%s", err);
	replay_free(&r);
	hw_plan_free(&plan);
	trace_reader_close(&rd);
}

static void run(const char *policy, const struct params *pp,
                const char *drafter, const struct params *dp, struct outcome *o)
{
	static const struct params none;
	struct plugin pol, dr;
	char err[1024];

	if (!pp)
		pp = &none;
	if (!dp)
		dp = &none;
	cr_assert_eq(plugin_load(&pol, policy, AHASD_PLUGIN_POLICY, pp->keys,
	                         pp->vals, pp->n, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(plugin_load(&dr, drafter, AHASD_PLUGIN_DRAFTER, dp->keys,
	                         dp->vals, dp->n, err, sizeof err),
	             0, "%s", err);
	run_loaded(&pol, &dr, o);
	plugin_unload(&dr);
	plugin_unload(&pol);
}

static double counter(const struct outcome *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->names[i], name) == 0)
			return o->vals[i];
	cr_assert_fail("no counter %s", name);
	return 0;
}

/* Counters that say how a build was called (expect_build checks them),
 * and the hash of what ABI 2 added, which an ABI-1 build never sees. */
static int is_counter(const char *name, const char *const *which, size_t n)
{
	const char *dot = strchr(name, '.');

	for (size_t i = 0; i < n; i++)
		if (dot && strcmp(dot + 1, which[i]) == 0)
			return 1;
	return 0;
}
static const char *const how_called[] = {
	"short_structs",
	"host_abi",
	"n_args",
	"args_in_order",
};
static const char *const abi2_hash[] = { "hash_b_hi", "hash_b_lo" };

/* Every result of a and b equal, bit for bit, and every counter but those
 * that say how a build was called; the ABI-2 hash too if with_b. */
static void expect_same(const struct outcome *a, const struct outcome *b,
                        int with_b, const char *what)
{
	const struct replay_metrics *x = &a->m, *y = &b->m;

#define SAME(f)                                                    \
	cr_expect(x->f == y->f, "%s: " #f " %.17g != %.17g", what, \
	          (double)x->f, (double)y->f)
	SAME(sequences);
	SAME(committed);
	SAME(time_s);
	SAME(energy_j);
	SAME(dynamic_j);
	SAME(static_j);
	SAME(drafted);
	SAME(accepted);
	SAME(wasted);
	SAME(wasted_draft_s);
	SAME(wasted_draft_j);
	SAME(preverified);
	SAME(preverify_tasks);
	SAME(preverify_rejections);
	SAME(batches);
	SAME(batch_tokens);
	SAME(lookahead_batches);
	SAME(verifications);
	SAME(switches);
	SAME(waits);
	for (unsigned d = 0; d < HW_MAX_DEV; d++) {
		SAME(busy_s[d]);
		SAME(idle_s[d]);
		SAME(dev_energy_j[d]);
	}
#undef SAME
	cr_assert_eq(a->n, b->n, "%s: %zu counters, %zu", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		cr_expect_str_eq(a->names[i], b->names[i], "%s", what);
		if (is_counter(a->names[i], how_called, 4) ||
		    (!with_b && is_counter(a->names[i], abi2_hash, 2)))
			continue;
		cr_expect(a->vals[i] == b->vals[i], "%s: %s %.17g != %.17g",
		          what, a->names[i], a->vals[i], b->vals[i]);
	}
}

/* ---- old builds under this host ---------------------------------------- */

static const char *const builds[] = { "v1", "v2", "v3", "v4" };
#define N_BUILDS (sizeof builds / sizeof builds[0])

static const char *probe(const char *kind, const char *ver)
{
	char name[64];

	snprintf(name, sizeof name, "probe_%s_%s", kind, ver);
	return build_path(name);
}

/* What each build says about how it was called. */
static void expect_build(const struct outcome *o, const char *ver,
                         double policy_args, double drafter_args)
{
	const int v3 = strcmp(ver, "v3") == 0 || strcmp(ver, "v4") == 0 ||
	               strcmp(ver, "cxx") == 0;
	static const char *const kinds[] = { "policy", "drafter" };

	for (size_t k = 0; k < 2; k++) {
		char n[64];
#define C(name) (snprintf(n, sizeof n, "%s." name, kinds[k]), counter(o, n))
		cr_expect_eq(C("create"), 1.0, "%s %s", ver, kinds[k]);
		cr_expect_eq(C("short_structs"), 0.0, "%s %s", ver, kinds[k]);
		cr_expect_eq(C("host_abi"), v3 ? AHASD_PLUGIN_ABI_VERSION : 0,
		             "%s %s", ver, kinds[k]);
		cr_expect_eq(C("args_in_order"), v3 ? 1.0 : 0.0, "%s %s", ver,
		             kinds[k]);
		/* ABI 3 gets all four keys; ABI 1 and 2 the user's */
		cr_expect_eq(C("n_args"),
		             v3  ? 4.0
		             : k ? drafter_args
		                 : policy_args,
		             "%s %s", ver, kinds[k]);
#undef C
	}
}

/* The probes must have met every case, or their agreement proves little. */
static void expect_exercised(const struct outcome *o)
{
	static const char *const nonzero[] = {
		"policy.begin_sequence",     "policy.after_batch",
		"policy.on_verify",          "policy.on_draft_step",
		"policy.on_preverify",       "policy.decide_draft",
		"policy.decide_wait",        "policy.decide_preverify",
		"drafter.begin_sequence",    "drafter.begin_batch",
		"drafter.draft_token",       "drafter.batch_result",
		"drafter.discarded_results",
	};

	for (size_t i = 0; i < sizeof nonzero / sizeof nonzero[0]; i++)
		cr_expect_gt(counter(o, nonzero[i]), 0.0, "%s never",
		             nonzero[i]);
	cr_expect_gt(o->m.preverify_rejections, 0u);
	cr_expect_gt(o->m.waits, 0u);
}

Test(abi, old_builds_run_as_new)
{
	static struct outcome ref, o;

	run(probe("policy", "v4"), NULL, probe("drafter", "v4"), NULL, &ref);
	expect_exercised(&ref);
	expect_build(&ref, "v4", 0, 0);
	for (size_t p = 0; p < N_BUILDS; p++) {
		for (size_t d = 0; d < N_BUILDS; d++) {
			char what[64];

			snprintf(what, sizeof what, "policy %s, drafter %s",
			         builds[p], builds[d]);
			run(probe("policy", builds[p]), NULL,
			    probe("drafter", builds[d]), NULL, &o);
			/* hash_b covers what ABI 2 added: an ABI-1 build
			 * never sees it */
			expect_same(&ref, &o, p > 0 && d > 0, what);
			if (p == d)
				expect_build(&o, builds[p], 0, 0);
		}
	}
	/* and ABI 1 saw nothing of ABI 2's fields */
	run(probe("policy", "v1"), NULL, probe("drafter", "v1"), NULL, &o);
	cr_expect_eq(counter(&o, "policy.hash_b_hi"), 0.0);
	cr_expect_eq(counter(&o, "policy.hash_b_lo"), 0.0);
	cr_expect_neq(counter(&ref, "policy.hash_b_lo"), 0.0);
}

Test(abi, old_builds_with_user_params)
{
	static struct outcome ref, o;
	static const struct params pp = { { "max_unverified", "pv_count" },
		                          { "4", "1" },
		                          2 };
	static const struct params dp = { { "h_stop", "len", "len" },
		                          { "1.25", "9", "5" },
		                          3 };

	run(probe("policy", "v4"), &pp, probe("drafter", "v4"), &dp, &ref);
	expect_exercised(&ref);
	for (size_t b = 0; b < N_BUILDS; b++) {
		run(probe("policy", builds[b]), &pp,
		    probe("drafter", builds[b]), &dp, &o);
		expect_same(&ref, &o, b > 0, builds[b]);
		expect_build(&o, builds[b], 2, 3);
	}
	/* the parameters mattered: the defaults give other results */
	run(probe("policy", "v4"), NULL, probe("drafter", "v4"), NULL, &o);
	cr_expect_neq(o.m.time_s, ref.m.time_s);
	cr_expect_neq(o.m.batches, ref.m.batches);
}

Test(abi, old_example_plugin)
{
	static struct outcome a, b;
	static const struct params pp = { { "max_unverified" }, { "3" }, 1 };

	/* defaults, then a parameter set by the user */
	run(build_path("greedy_v2"), NULL, "adaedl", NULL, &a);
	run(build_path("greedy_v4"), NULL, "adaedl", NULL, &b);
	expect_same(&a, &b, 1, "greedy_lookahead ABI 2 vs 4");
	cr_expect_eq(counter(&a, "policy.max_unverified"), 2.0);
	cr_expect_gt(counter(&a, "policy.waits"), 0.0);
	run(build_path("greedy_v2"), &pp, "adaedl", NULL, &a);
	run(build_path("greedy_v4"), &pp, "adaedl", NULL, &b);
	expect_same(&a, &b, 1, "greedy_lookahead ABI 2 vs 4, max_unverified=3");
	cr_expect_eq(counter(&a, "policy.max_unverified"), 3.0);
}

Test(abi, cxx_plugin)
{
#if ABI_HAVE_CXX
	static struct outcome ref, o;

	run(probe("policy", "v4"), NULL, probe("drafter", "v4"), NULL, &ref);
	run(probe("policy", "cxx"), NULL, probe("drafter", "cxx"), NULL, &o);
	expect_same(&ref, &o, 1, "C++ build");
	expect_build(&o, "cxx", 0, 0);
	run(probe("policy", "cxx"), NULL, probe("drafter", "v1"), NULL, &o);
	expect_same(&ref, &o, 0, "C++ policy, ABI-1 drafter");
#else
	cr_skip_test("no C++ compiler when meson set up this build");
#endif
}

/* ---- the loader's checks, on descriptors in this file -------------------- */

/* A drafter that counts its hook calls: a batch is 2 tokens. */
struct tiny {
	uint64_t sequences, batches, tokens, results;
	uint32_t host_abi;
	size_t n;
	char got[256]; /* "k=v;..." as create() got them */
};

static int tiny_create(void **st, const struct ahasd_create_args *a, char *err,
                       size_t errlen)
{
	struct tiny *t = calloc(1, sizeof *t);
	size_t off = 0;

	(void)err;
	(void)errlen;
	if (!t)
		return -1;
	t->host_abi = a->host_abi_version;
	t->n = a->n;
	for (size_t i = 0; i < a->n && off < sizeof t->got; i++)
		off += (size_t)snprintf(t->got + off, sizeof t->got - off,
		                        "%s%s=%s", i ? ";" : "", a->keys[i],
		                        a->values[i]);
	*st = t;
	return 0;
}

static void tiny_destroy(void *st)
{
	free(st);
}

static void tiny_begin_sequence(void *st, const struct ahasd_seq_info *q)
{
	(void)q;
	((struct tiny *)st)->sequences++;
}

static void tiny_begin_batch(void *st, uint64_t id, uint32_t max_len)
{
	(void)id;
	(void)max_len;
	((struct tiny *)st)->batches++;
}

static int tiny_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	((struct tiny *)st)->tokens++;
	return tok->index + 1 >= 2;
}

static void tiny_batch_result(void *st, const struct ahasd_batch_result *r)
{
	(void)r;
	((struct tiny *)st)->results++;
}

static uint32_t tiny_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

static void tiny_on_draft_step(void *st, const struct ahasd_task_info *t)
{
	(void)t;
	((struct tiny *)st)->tokens++;
}

static const struct ahasd_param tiny_params[] = {
	{ "a", "1", "first" },
	{ "b", "2", "second" },
	{ "c", "3", "third" },
	{ NULL, NULL, NULL },
};

/* A full drafter table, and the same hooks in a table from a header whose
 * last hook was draft_token: batch_result lies past its struct_size. */
static const struct ahasd_drafter_hooks tiny_full = {
	.struct_size = sizeof(struct ahasd_drafter_hooks),
	.begin_sequence = tiny_begin_sequence,
	.begin_batch = tiny_begin_batch,
	.draft_token = tiny_draft_token,
	.batch_result = tiny_batch_result,
};
static const struct ahasd_drafter_hooks tiny_short = {
	.struct_size = offsetof(struct ahasd_drafter_hooks, batch_result),
	.begin_sequence = tiny_begin_sequence,
	.begin_batch = tiny_begin_batch,
	.draft_token = tiny_draft_token,
	.batch_result = tiny_batch_result,
};
/* A policy table that ends before on_draft_step. */
static const struct ahasd_policy_hooks tiny_policy_short = {
	.struct_size = offsetof(struct ahasd_policy_hooks, on_draft_step),
	.exec_mode = tiny_mode,
	.on_draft_step = tiny_on_draft_step,
};
static const struct ahasd_policy_hooks tiny_policy_full = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = tiny_mode,
	.on_draft_step = tiny_on_draft_step,
};

static struct ahasd_plugin tiny_desc(uint32_t kind)
{
	return (struct ahasd_plugin){
		.abi_version = AHASD_PLUGIN_ABI_VERSION,
		.struct_size = sizeof(struct ahasd_plugin),
		.kind = kind,
		.name = "tiny",
		.version = "1",
		.params = tiny_params,
		.create = tiny_create,
		.destroy = tiny_destroy,
		.policy = kind == AHASD_PLUGIN_POLICY ? &tiny_policy_full
		                                      : NULL,
		.drafter = kind == AHASD_PLUGIN_DRAFTER ? &tiny_full : NULL,
	};
}

/* Run tiny as the drafter under async, or as the policy with fixed. */
static const struct tiny *run_tiny(const struct ahasd_plugin *d,
                                   struct plugin *pol, struct plugin *dr,
                                   struct outcome *o)
{
	char err[1024];
	struct plugin *mine = d->kind == AHASD_PLUGIN_DRAFTER ? dr : pol;

	cr_assert_eq(plugin_open_desc(mine, d, "(test_abi.c)", d->kind, err,
	                              sizeof err),
	             0, "%s", err);
	cr_assert_eq(plugin_create(mine, NULL, NULL, 0, err, sizeof err), 0,
	             "%s", err);
	if (mine == dr)
		cr_assert_eq(plugin_load(pol, "async", AHASD_PLUGIN_POLICY,
		                         NULL, NULL, 0, err, sizeof err),
		             0, "%s", err);
	else
		cr_assert_eq(plugin_load(dr, "fixed", AHASD_PLUGIN_DRAFTER,
		                         NULL, NULL, 0, err, sizeof err),
		             0, "%s", err);
	run_loaded(pol, dr, o);
	return mine->state;
}

Test(abi, hook_past_struct_size_not_called)
{
	static struct outcome o;
	struct plugin pol, dr;
	struct ahasd_plugin d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	const struct tiny *t;

	t = run_tiny(&d, &pol, &dr, &o);
	cr_expect_gt(t->results, 0u, "the full table's batch_result is called");
	cr_expect_gt(t->tokens, 0u);
	plugin_unload(&dr);
	plugin_unload(&pol);

	d.drafter = &tiny_short;
	t = run_tiny(&d, &pol, &dr, &o);
	cr_expect_gt(t->tokens, 0u);
	cr_expect_gt(t->batches, 0u);
	cr_expect_gt(t->sequences, 0u);
	cr_expect_eq(t->results, 0u, "batch_result past struct_size called");
	plugin_unload(&dr);
	plugin_unload(&pol);

	d = tiny_desc(AHASD_PLUGIN_POLICY);
	t = run_tiny(&d, &pol, &dr, &o);
	cr_expect_gt(t->tokens, 0u, "the full table's on_draft_step is called");
	plugin_unload(&dr);
	plugin_unload(&pol);

	d.policy = &tiny_policy_short;
	t = run_tiny(&d, &pol, &dr, &o);
	cr_expect_eq(t->tokens, 0u, "on_draft_step past struct_size called");
	cr_expect_gt(o.m.drafted, 0u);
	plugin_unload(&dr);
	plugin_unload(&pol);
}

static void expect_refused(const struct ahasd_plugin *d, uint32_t kind,
                           const char *needle)
{
	struct plugin p;
	char err[1024] = "";

	cr_expect_lt(
	        plugin_open_desc(&p, d, "(test_abi.c)", kind, err, sizeof err),
	        0, "accepted; wanted: %s", needle);
	cr_expect_not_null(strstr(err, needle), "\"%s\" lacks \"%s\"", err,
	                   needle);
	cr_expect_null(p.desc, "left loaded");
}

Test(abi, descriptor_checks)
{
	struct ahasd_plugin d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	char want[128];
	static const struct ahasd_param no_default[] = {
		{ "a", NULL, "no default" },
		{ NULL, NULL, NULL },
	};
	static const struct ahasd_drafter_hooks no_draft_token = {
		.struct_size = offsetof(struct ahasd_drafter_hooks,
		                        draft_token),
		.draft_token = tiny_draft_token, /* past struct_size */
	};

	snprintf(want, sizeof want, "this host supports %u to %u",
	         AHASD_PLUGIN_ABI_MIN, AHASD_PLUGIN_ABI_VERSION);
	d.abi_version = AHASD_PLUGIN_ABI_MIN - 1;
	expect_refused(&d, AHASD_PLUGIN_DRAFTER, want);
	d.abi_version = AHASD_PLUGIN_ABI_VERSION + 1;
	expect_refused(&d, AHASD_PLUGIN_DRAFTER, want);

	d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	d.struct_size = offsetof(struct ahasd_plugin, drafter);
	expect_refused(&d, AHASD_PLUGIN_DRAFTER, "descriptor is");

	d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	expect_refused(&d, AHASD_PLUGIN_POLICY, "is a drafting algorithm");

	d.drafter = &no_draft_token;
	expect_refused(&d, AHASD_PLUGIN_DRAFTER, "lacks draft_token");

	d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	d.params = no_default;
	expect_refused(&d, AHASD_PLUGIN_DRAFTER,
	               "parameter 'a' has no default value");
}

Test(abi, create_gets_version_and_every_key)
{
	const struct ahasd_plugin d = tiny_desc(AHASD_PLUGIN_DRAFTER);
	static const char *const keys[] = { "c", "a", "c" };
	static const char *const vals[] = { "9", "7", "10" };
	struct plugin p;
	char err[1024];

	cr_assert_eq(plugin_open_desc(&p, &d, "(test_abi.c)",
	                              AHASD_PLUGIN_DRAFTER, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(plugin_create(&p, keys, vals, 3, err, sizeof err), 0, "%s",
	             err);
	const struct tiny *t = p.state;
	cr_expect_eq(t->host_abi, AHASD_PLUGIN_ABI_VERSION);
	cr_expect_eq(t->n, 3u);
	/* table order; the last value given for c; b's default */
	cr_expect_str_eq(t->got, "a=7;b=2;c=10");
	cr_expect_str_eq(p.params, t->got, "the run record differs");
	plugin_unload(&p);

	/* an unknown key is refused before create() */
	cr_assert_eq(plugin_open_desc(&p, &d, "(test_abi.c)",
	                              AHASD_PLUGIN_DRAFTER, err, sizeof err),
	             0, "%s", err);
	static const char *const bad[] = { "d" };
	cr_expect_neq(plugin_create(&p, bad, vals, 1, err, sizeof err), 0);
	cr_expect_not_null(strstr(err, "unknown parameter 'd'"), "%s", err);
	cr_expect_null(p.desc);
}

/* Rule 2: each struct the host passes begins with its size. */
#define HEAD(type)                                              \
	_Static_assert(offsetof(struct type, struct_size) == 0, \
	               #type " does not begin with struct_size")
HEAD(ahasd_create_args);
HEAD(ahasd_seq_info);
HEAD(ahasd_draft_token);
HEAD(ahasd_batch_result);
HEAD(ahasd_drafter_hooks);
HEAD(ahasd_decision);
HEAD(ahasd_host_view);
HEAD(ahasd_batch_info);
HEAD(ahasd_verify_info);
HEAD(ahasd_task_info);
HEAD(ahasd_policy_hooks);
_Static_assert(offsetof(struct ahasd_plugin, abi_version) == 0 &&
                       offsetof(struct ahasd_plugin, struct_size) == 4,
               "the descriptor begins with abi_version, struct_size");
/* an array element, frozen */
_Static_assert(sizeof(struct ahasd_param) == 3 * sizeof(const char *),
               "struct ahasd_param changed");

Test(abi, structs_begin_with_their_size)
{
	/* the checks are the _Static_asserts above; this names them */
	cr_expect(1);
}

/* ---- ABI 4: what a plugin needs of a trace ------------------------------ */

static uint32_t needs_of(const char *name, uint32_t kind, const char *key,
                         const char *val)
{
	struct plugin p;
	char err[1024];
	const char *keys[1] = { key }, *vals[1] = { val };
	uint32_t n;

	cr_assert_eq(plugin_load(&p, name, kind, keys, vals, key ? 1 : 0, err,
	                         sizeof err),
	             0, "%s", err);
	n = plugin_needs(&p);
	plugin_unload(&p);
	return n;
}

Test(abi, needs_since_abi_4)
{
	for (size_t b = 0; b < N_BUILDS; b++) {
		/* the probe declares nothing; an old descriptor ends before
		 * the field, and the host must not read past it */
		cr_expect_eq(needs_of(probe("policy", builds[b]),
		                      AHASD_PLUGIN_POLICY, NULL, NULL),
		             0u, "%s", builds[b]);
		cr_expect_eq(needs_of(probe("drafter", builds[b]),
		                      AHASD_PLUGIN_DRAFTER, NULL, NULL),
		             0u, "%s", builds[b]);
	}
	cr_expect_eq(needs_of(build_path("greedy_v2"), AHASD_PLUGIN_POLICY,
	                      NULL, NULL),
	             0u);
	cr_expect_eq(needs_of("adaedl", AHASD_PLUGIN_DRAFTER, NULL, NULL),
	             AHASD_NEEDS_ENTROPY);
	cr_expect_eq(needs_of("svip", AHASD_PLUGIN_DRAFTER, NULL, NULL),
	             AHASD_NEEDS_ENTROPY);
	cr_expect_eq(needs_of("specdecpp", AHASD_PLUGIN_DRAFTER, NULL, NULL),
	             AHASD_NEEDS_ENTROPY);
	cr_expect_eq(needs_of("fixed", AHASD_PLUGIN_DRAFTER, NULL, NULL), 0u);
	cr_expect_eq(needs_of("banditspec", AHASD_PLUGIN_DRAFTER, NULL, NULL),
	             0u);
	cr_expect_eq(needs_of("sync", AHASD_PLUGIN_POLICY, NULL, NULL), 0u);
	cr_expect_eq(needs_of("async", AHASD_PLUGIN_POLICY, NULL, NULL), 0u);
	cr_expect_eq(needs_of("ahasd", AHASD_PLUGIN_POLICY, NULL, NULL),
	             AHASD_NEEDS_ENTROPY);
	cr_expect_eq(needs_of("ahasd", AHASD_PLUGIN_POLICY, "edc", "0"), 0u);
	/* the field sits after everything ABI 3 had */
	cr_expect_geq(offsetof(struct ahasd_plugin, needs),
	              offsetof(struct ahasd_plugin, drafter) +
	                      sizeof(((struct ahasd_plugin *)0)->drafter));
}
