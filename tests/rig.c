/* rig.c - the engine under test; see rig.h. */
#include "rig.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rig_open(struct rig *g, const struct rig_opts *o)
{
	char err[1024];
	memset(g, 0, sizeof *g);
	cr_assert_eq(trace_reader_open(&g->rd, o->trace, err, sizeof err), 0,
	             "%s", err);
	const struct trace_header *h = trace_reader_header(g->rd);
	/* "NAME?key=value&key=value": a preset with overrides */
	char pbuf[512];
	snprintf(pbuf, sizeof pbuf, "%s", o->preset);
	char *ovr = strchr(pbuf, '?');
	if (ovr)
		*ovr++ = '\0';
	cr_assert_eq(hw_platform_load(&g->plat, pbuf, err, sizeof err), 0, "%s",
	             err);
	for (char *kv = ovr ? strtok(ovr, "&") : NULL; kv;
	     kv = strtok(NULL, "&")) {
		char *eq = strchr(kv, '=');
		cr_assert_not_null(eq, "%s", kv);
		*eq = '\0';
		cr_assert_eq(
		        hw_platform_set(&g->plat, kv, eq + 1, err, sizeof err),
		        0, "%s", err);
	}
	cr_assert_eq(hw_plan_create(&g->plan, &g->plat, &h->draft, &h->target,
	                            err, sizeof err),
	             0, "%s", err);
	if (o->policy_desc) {
		g->pol.desc = o->policy_desc;
		snprintf(g->pol.path, sizeof g->pol.path, "(tests/rig.c)");
		cr_assert_eq(plugin_create(&g->pol, o->pkeys, o->pvals, o->np,
		                           err, sizeof err),
		             0, "%s", err);
	} else {
		cr_assert_eq(plugin_load(&g->pol, o->policy,
		                         AHASD_PLUGIN_POLICY, o->pkeys,
		                         o->pvals, o->np, err, sizeof err),
		             0, "%s", err);
	}
	const char *k[1] = { o->dkey }, *v[1] = { o->dval };
	cr_assert_eq(plugin_load(&g->dr, o->drafter, AHASD_PLUGIN_DRAFTER, k, v,
	                         o->dkey ? 1 : 0, err, sizeof err),
	             0, "%s", err);
	struct replay_config cfg = { .plan = g->plan,
		                     .policy = &g->pol,
		                     .drafter = &g->dr,
		                     .seed = o->seed ? o->seed : 1,
		                     .lookahead = h->lookahead,
		                     .queue_capacity = o->qcap ? o->qcap : 32,
		                     .max_draft = 64,
		                     .on_event = o->on_event,
		                     .event_user = o->user };
	cr_assert_eq(replay_create(&g->r, &cfg, err, sizeof err), 0, "%s", err);
}

int rig_is_sync(const struct rig *g)
{
	return g->pol.desc->policy->exec_mode(g->pol.state) ==
	       AHASD_EXEC_OPERATOR_SYNC;
}

void rig_run(struct rig *g)
{
	char err[1024];
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(g->rd, &s, err, sizeof err)) == 1)
		cr_assert_eq(replay_sequence(g->r, &s, NULL, err, sizeof err),
		             0, "%s", err);
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g->r);
}

void rig_run_results(struct rig *g, struct replay_seq_result *res, size_t max,
                     size_t *n)
{
	char err[1024];
	struct trace_seq s;
	int rc;
	*n = 0;
	while ((rc = trace_reader_next(g->rd, &s, err, sizeof err)) == 1) {
		struct replay_seq_result q;
		cr_assert_eq(replay_sequence(g->r, &s, &q, err, sizeof err), 0,
		             "%s", err);
		if (*n < max)
			res[(*n)++] = q;
	}
	cr_assert_eq(rc, 0, "%s", err);
	replay_finish(g->r);
}

void rig_close(struct rig *g)
{
	replay_free(&g->r);
	plugin_unload(&g->dr);
	plugin_unload(&g->pol);
	hw_plan_free(&g->plan);
	trace_reader_close(&g->rd);
}

double rig_step(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_step_cost(g->plan, t, m, L, &c);
	return c.time_s;
}

double rig_task(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_task_cost(g->plan, t, m, L, &c);
	return c.time_s;
}

static double dyn_j(const struct rig *g, const struct hw_cost *c)
{
	double j = 0;
	for (unsigned d = 0; d < g->plat.n_dev; d++)
		j += c->energy_dev_j[d];
	return j;
}

double rig_task_j(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_task_cost(g->plan, t, m, L, &c);
	return dyn_j(g, &c);
}

double rig_step_j(struct rig *g, enum hw_task t, unsigned m, unsigned L)
{
	struct hw_cost c;
	hw_step_cost(g->plan, t, m, L, &c);
	return dyn_j(g, &c);
}

double rig_static_w(const struct rig *g, unsigned d)
{
	const struct hw_device *dv = &g->plat.dev[d];
	return dv->static_w * (dv->kind == HW_DEV_GPU ? dv->count : 1);
}

double rig_static_w_all(const struct rig *g)
{
	double w = 0;
	for (unsigned d = 0; d < g->plat.n_dev; d++)
		w += rig_static_w(g, d);
	return w;
}

void assert_within(double got, double want, double rel, const char *what)
{
	cr_assert(fabs(got - want) <= rel * fabs(want) + 1e-18,
	          "%s: got %.17g, want %.17g", what, got, want);
}

void assert_close(double got, double want, const char *what)
{
	assert_within(got, want, 1e-12, what);
}

/* ---- events ---- */

void sum_event(void *user, const struct replay_event *ev)
{
	struct evsum *l = user;
	const double len = ev->end_s - ev->start_s;
	l->n++;
	if (ev->device < 0 || ev->device >= HW_MAX_DEV || len < 0) {
		l->bad_kind = 1;
		return;
	}
	if (ev->start_s < l->last_end[ev->device] - 1e-12)
		l->overlap = 1;
	l->last_end[ev->device] = ev->end_s;
	if (ev->kind == REPLAY_EV_DRAFT && ev->outcome == REPLAY_OUT_WASTED) {
		l->wasted_s += len;
		l->wasted_n++;
	}
	switch (ev->kind) {
	case REPLAY_EV_DRAFT:
	case REPLAY_EV_VERIFY:
	case REPLAY_EV_PREVERIFY:
	case REPLAY_EV_SWITCH:
	case REPLAY_EV_OFFLOAD: l->busy[ev->device] += len; break;
	case REPLAY_EV_TRANSFER: l->xfer[ev->device] += len; break;
	case REPLAY_EV_IDLE: l->idle[ev->device] += len; break;
	default: l->bad_kind = 1;
	}
}

void check_events(const struct rig *g, const struct evsum *l, const char *who)
{
	const struct replay_metrics *m = replay_metrics(g->r);
	const int sync = rig_is_sync(g);
	const int vd = hw_task_device(g->plan, HW_TASK_VERIFY);
	const double tol = EV_REL * m->time_s;
	cr_assert_gt(l->n, 0, "%s: no events", who);
	cr_assert_not(l->bad_kind, "%s: event of unknown kind or device", who);
	cr_assert_not(l->overlap, "%s: overlapping events", who);
	/* A draft's outcome is final when its event is drawn (after F every
	 * chain token is off path), so the wasted draft events are exactly
	 * the wasted tokens, and their time is wasted_draft_s. (Sync draws a
	 * step as one event per device share, without its transfer.) */
	if (!sync) {
		cr_assert_eq(l->wasted_n, m->wasted,
		             "%s: wasted draft events "
		             "%llu, wasted %llu",
		             who, (unsigned long long)l->wasted_n,
		             (unsigned long long)m->wasted);
		cr_assert(fabs(l->wasted_s - m->wasted_draft_s) <= tol,
		          "%s: wasted draft events %.17g s, wasted_draft_s "
		          "%.17g",
		          who, l->wasted_s, m->wasted_draft_s);
	}
	cr_assert_geq(m->wasted_draft_j, 0.0);
	cr_assert((m->wasted > 0) == (m->wasted_draft_s > 0),
	          "%s: %llu wasted, %.17g s", who,
	          (unsigned long long)m->wasted, m->wasted_draft_s);
	for (unsigned d = 0; d < g->plat.n_dev; d++) {
		const double ev_time = l->busy[d] + l->idle[d] + l->xfer[d];
		cr_assert_geq(m->idle_s[d], -tol, "%s dev %u: idle < 0", who,
		              d);
		cr_assert(fabs(l->busy[d] - m->busy_s[d]) <= tol,
		          "%s dev %u: busy events %.17g, busy_s %.17g", who, d,
		          l->busy[d], m->busy_s[d]);
		cr_assert(fabs(l->last_end[d] - m->time_s) <= tol,
		          "%s dev %u: last event ends at %.17g, time %.17g",
		          who, d, l->last_end[d], m->time_s);
		if (sync && d == (unsigned)vd) {
			/* transfers are busy on no device: idle_s holds them */
			cr_assert(fabs(l->idle[d] + l->xfer[d] -
			               m->idle_s[d]) <= tol,
			          "%s dev %u: idle+transfer events "
			          "%.17g, idle_s %.17g",
			          who, d, l->idle[d] + l->xfer[d],
			          m->idle_s[d]);
			cr_assert(fabs(ev_time - m->time_s) <= tol,
			          "%s dev %u: events cover %.17g of %.17g s",
			          who, d, ev_time, m->time_s);
			continue;
		}
		cr_assert(l->xfer[d] == 0,
		          "%s dev %u: transfer event off the "
		          "verify lane or in a task-level run",
		          who, d);
		cr_assert(fabs(l->idle[d] - m->idle_s[d]) <= tol,
		          "%s dev %u: idle events %.17g, idle_s %.17g", who, d,
		          l->idle[d], m->idle_s[d]);
		cr_assert(fabs(ev_time - m->time_s) <= tol,
		          "%s dev %u: events cover %.17g of %.17g s", who, d,
		          ev_time, m->time_s);
	}
}

/* ---- the script policy ---- */

struct script_policy {
	uint32_t count, from, times, closed;
	uint64_t preverify_decisions;
};

static int script_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	const char *const *keys = args->keys, *const *values = args->values;
	const size_t n = args->n; /* every key of script_params, defaults in */
	struct script_policy *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *end = NULL;
		unsigned long v = strtoul(values[i], &end, 10);
		if (end == values[i] || *end || v > UINT32_MAX) {
			snprintf(err, errlen, "%s: bad value '%s'", keys[i],
			         values[i]);
			free(s);
			return -1;
		}
		if (!strcmp(keys[i], "count"))
			s->count = (uint32_t)v;
		else if (!strcmp(keys[i], "from"))
			s->from = (uint32_t)v;
		else
			s->times = (uint32_t)v;
	}
	*st = s;
	return 0;
}

static void script_destroy(void *st)
{
	free(st);
}

static int script_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	const struct script_policy *s = st;
	if (i > 0)
		return 0;
	*name = "preverify_decisions";
	*value = (double)s->preverify_decisions;
	return 1;
}

static uint32_t script_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

static void script_begin_sequence(void *st, const struct ahasd_seq_info *q)
{
	struct script_policy *s = st;
	(void)q;
	s->closed = 0;
}

static void script_after_batch(void *st, const struct ahasd_host_view *v,
                               const struct ahasd_batch_info *b,
                               struct ahasd_decision *d)
{
	struct script_policy *s = st;
	(void)v;
	(void)b;
	s->closed++;
	if (s->closed >= s->from && s->closed - s->from < s->times) {
		d->next = AHASD_NEXT_PREVERIFY;
		d->count = s->count;
		s->preverify_decisions++;
	} else {
		d->next = AHASD_NEXT_DRAFT;
	}
}

static const struct ahasd_param script_params[] = {
	{ "count", "1", "tokens per pre-verification" },
	{ "from", "1", "first closed batch (1-based) followed by one" },
	{ "times", "4294967295", "pre-verifications per sequence" },
	{ NULL, NULL, NULL },
};

static const struct ahasd_policy_hooks script_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = script_mode,
	.begin_sequence = script_begin_sequence,
	.after_batch = script_after_batch,
};

const struct ahasd_plugin rig_script_policy = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "script",
	.version = "1.0",
	.description = "test policy: pre-verify after fixed batches",
	.params = script_params,
	.create = script_create,
	.destroy = script_destroy,
	.counter = script_counter,
	.policy = &script_hooks,
};

const char *rig_feedback_drafter(void)
{
	return fx_build_path("tests/feedback_drafter.so");
}

double rig_counter(const struct plugin *p, const char *name)
{
	for (uint32_t i = 0;; i++) {
		const char *n = NULL;
		double v = 0;
		cr_assert(p->desc->counter(p->state, i, &n, &v),
		          "%s: no counter %s", p->desc->name, name);
		if (n && !strcmp(n, name))
			return v;
	}
}

const char *rig_shipped(const char *name)
{
	char rel[512];
	snprintf(rel, sizeof rel, "traces/%s", name);
	return fx_source_path(rel);
}
