/* sweep_plan.c - see sweep_plan.h. */
#include "sweep_plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hw.h"
#include "models.h"
#include "plugin.h"
#include "sweep.h"
#include "util.h"

#define ERRLEN 1024

static void say(const struct sweep_grid *g, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void say(const struct sweep_grid *g, const char *fmt, ...)
{
	FILE *f = g->diag ? g->diag : stderr;
	va_list ap;

	fprintf(f, "%s: ", g->prog ? g->prog : "sweep");
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

void sweep_grid_init(struct sweep_grid *g, const char *prog)
{
	memset(g, 0, sizeof *g);
	g->prog = prog;
	g->seed = 1;
	g->queue_capacity = 32;
	g->max_draft = 64;
}

void sweep_grid_defaults(struct sweep_grid *g)
{
	static const char *const policies[] = { "sync", "async", "ahasd" };

	if (!g->n_policies)
		for (size_t i = 0; i < 3; i++)
			g->policies[g->n_policies++] = policies[i];
	if (!g->n_drafters)
		g->drafters[g->n_drafters++] = "adaedl";
	if (!g->n_presets)
		g->presets[g->n_presets++] = "npu-pim";
}

int sweep_parse_u64(const struct sweep_grid *g, const char *opt, const char *s,
                    uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		say(g, "%s: expected an integer in [%llu, %llu], got '%s'", opt,
		    (unsigned long long)min, (unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

int sweep_parse_timeout(const struct sweep_grid *g, const char *s, double *out)
{
	char *end;
	double t;

	errno = 0;
	t = strtod(s, &end);
	if (errno || end == s || *end || !(t >= 0) || t > 1e9) {
		say(g,
		    "--run-timeout: expected seconds in [0, 1e9] (0: no "
		    "bound), got '%s'",
		    s);
		return -1;
	}
	*out = t;
	return 0;
}

static int list_add(const struct sweep_grid *g, const char **list, size_t *n,
                    const char *v, const char *what)
{
	if (*n == SWEEP_MAX_LIST) {
		say(g, "too many %s (max %d)", what, SWEEP_MAX_LIST);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

void sweep_grid_free(struct sweep_grid *g)
{
	for (size_t i = 0; i < g->n_params; i++)
		sweep_values_free(&g->param[i].val, &g->param[i].n_val);
	g->n_params = 0;
}

static int param_add(struct sweep_grid *g, char *arg)
{
	char *eq = strchr(arg, '=');
	char err[ERRLEN];
	struct sweep_param *p;

	if (!eq || eq == arg) {
		say(g, "--param '%s': expected KEY=VALUE", arg);
		return 2;
	}
	if (g->n_params == SWEEP_MAX_PARAMS) {
		say(g, "too many --param");
		return 2;
	}
	*eq = '\0';
	for (size_t i = 0; i < g->n_params; i++)
		if (!strcmp(g->param[i].key, arg)) {
			say(g,
			    "--param %s given twice (%s and %s); give each "
			    "key once (a list sweeps it: %s=%s,%s)",
			    arg, g->param[i].spec, eq + 1, arg,
			    g->param[i].spec, eq + 1);
			return 2;
		}
	p = &g->param[g->n_params];
	p->key = arg;
	p->spec = eq + 1;
	p->hw = !strncmp(arg, "hw.", 3);
	if (sweep_values(p->spec, &p->val, &p->n_val, err, sizeof err) < 0) {
		say(g, "--param %s: %s", arg, err);
		return 2;
	}
	g->n_params++;
	return 0;
}

int sweep_grid_option(struct sweep_grid *g, enum sweep_opt opt, char *arg)
{
	uint64_t v;

	switch (opt) {
	case SWEEP_OPT_POLICY:
		return list_add(g, g->policies, &g->n_policies, arg, "policies")
		               ? 2
		               : 0;
	case SWEEP_OPT_DRAFTER:
		return list_add(g, g->drafters, &g->n_drafters, arg, "drafters")
		               ? 2
		               : 0;
	case SWEEP_OPT_HW:
		return list_add(g, g->presets, &g->n_presets, arg, "presets")
		               ? 2
		               : 0;
	case SWEEP_OPT_PARAM: return param_add(g, arg);
	case SWEEP_OPT_SEED:
		return sweep_parse_u64(g, "--seed", arg, 0, UINT64_MAX,
		                       &g->seed)
		               ? 2
		               : 0;
	case SWEEP_OPT_QUEUE:
		if (sweep_parse_u64(g, "--queue-capacity", arg, 1, 4096, &v))
			return 2;
		g->queue_capacity = (uint32_t)v;
		return 0;
	case SWEEP_OPT_MAX_DRAFT:
		if (sweep_parse_u64(g, "--max-draft", arg, 1, HW_MAX_M - 1, &v))
			return 2;
		g->max_draft = (uint32_t)v;
		return 0;
	case SWEEP_OPT_MODELS: {
		const char *colon = strchr(arg, ':');

		/* ":TARGET" for a trace whose draft is a lookup (checked
		 * against the trace when it is opened) */
		if (!colon || !colon[1] || strchr(colon + 1, ':')) {
			say(g,
			    "--models '%s': expected DRAFT:TARGET (or :TARGET "
			    "for a trace whose draft is a lookup)",
			    arg);
			return 2;
		}
		g->models = arg;
		return 0;
	}
	}
	return 2;
}

static uint32_t plugin_kind(const struct sweep_grid *g, size_t k)
{
	return k < g->n_policies ? AHASD_PLUGIN_POLICY : AHASD_PLUGIN_DRAFTER;
}

static const char *plugin_arg(const struct sweep_grid *g, size_t k)
{
	return k < g->n_policies ? g->policies[k]
	                         : g->drafters[k - g->n_policies];
}

/* Open every selected plugin once: its name and which keys reach it;
 * every key but hw.* must reach one of them. @return 0, or 1 (a plugin
 * does not load, an unknown key). */
static int plugins_load(struct sweep_grid *g)
{
	char err[ERRLEN];
	int used[SWEEP_MAX_PARAMS] = { 0 };

	g->n_plugins = g->n_policies + g->n_drafters;
	memset(g->reach, 0, sizeof g->reach);
	for (size_t k = 0; k < g->n_plugins; k++) {
		const char *name = plugin_arg(g, k);
		struct plugin p;

		if (plugin_open(&p, name, plugin_kind(g, k), err, sizeof err) <
		    0) {
			char sug[64];
			say(g, "%s", err);
			if (!strchr(name, '/') &&
			    util_suggest_file(name, getenv("AHASD_PLUGIN_PATH"),
			                      plugin_builtin_dir(), ".so", sug))
				say(g, "did you mean '%s'?", sug);
			return 1;
		}
		snprintf(g->plugin_name[k], sizeof g->plugin_name[k], "%s",
		         p.desc->name);
		const size_t nl = strlen(p.desc->name);
		for (size_t i = 0; i < g->n_params; i++) {
			const char *key = g->param[i].key;

			if (g->param[i].hw)
				continue;
			if (!strncmp(key, p.desc->name, nl) && key[nl] == '.')
				g->reach[k][i] = (unsigned char)(nl + 2);
			else if (!strchr(key, '.') && plugin_declares(&p, key))
				g->reach[k][i] = 1;
			used[i] |= g->reach[k][i] != 0;
		}
		plugin_unload(&p);
	}
	for (size_t i = 0; i < g->n_params; i++) {
		if (used[i] || g->param[i].hw)
			continue;
		char sel[512];
		size_t off = 0;
		for (size_t k = 0; k < g->n_plugins; k++) {
			int w = snprintf(sel + off, sizeof sel - off, "%s%s",
			                 k ? ", " : "", plugin_arg(g, k));
			if (w < 0 || (size_t)w >= sizeof sel - off)
				break;
			off += (size_t)w;
		}
		say(g,
		    "unknown parameter '%s': no selected plugin (%s) "
		    "declares it (see --list)",
		    g->param[i].key, sel);
		return 1;
	}
	return 0;
}

/* The keys, as plugin k sees them, and their values at point idx.
 * @return how many. */
static size_t plugin_kv(const struct sweep_grid *g, size_t k, const size_t *idx,
                        struct run_kv *kv)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n_params; i++)
		if (g->reach[k][i])
			kv[n++] = (struct run_kv){ g->param[i].key +
				                           g->reach[k][i] - 1,
				                   g->param[i].val[idx[i]] };
	return n;
}

/* Every value of every key a plugin takes, in every combination it will
 * run with, creates the plugin: a bad one fails here, before any run.
 * @return 0 or 1. */
static int check_plugin_values(const struct sweep_grid *g)
{
	size_t nv[SWEEP_MAX_PARAMS], idx[SWEEP_MAX_PARAMS] = { 0 };
	unsigned char mask[SWEEP_MAX_PARAMS];
	struct run_kv kv[SWEEP_MAX_PARAMS];
	const char *keys[SWEEP_MAX_PARAMS], *vals[SWEEP_MAX_PARAMS];
	char err[ERRLEN];

	for (size_t i = 0; i < g->n_params; i++)
		nv[i] = g->param[i].n_val;
	for (size_t k = 0; k < g->n_plugins; k++) {
		struct plugin held;

		/* keeps the object loaded while each point loads it again */
		if (plugin_open(&held, plugin_arg(g, k), plugin_kind(g, k), err,
		                sizeof err) < 0) {
			say(g, "%s", err);
			return 1;
		}
		for (size_t i = 0; i < g->n_params; i++)
			mask[i] = g->reach[k][i] != 0;
		memset(idx, 0, sizeof idx);
		do {
			struct plugin p;
			const size_t n = plugin_kv(g, k, idx, kv);

			for (size_t j = 0; j < n; j++) {
				keys[j] = kv[j].key;
				vals[j] = kv[j].value;
			}
			if (plugin_load(&p, plugin_arg(g, k), plugin_kind(g, k),
			                keys, vals, n, err, sizeof err) < 0) {
				say(g, "%s", err);
				plugin_unload(&held);
				return 1;
			}
			plugin_unload(&p);
		} while (sweep_next(idx, nv, mask, g->n_params));
		plugin_unload(&held);
	}
	return 0;
}

/* Every preset loads and takes every value of every hw.* key (in every
 * combination), and the model presets load, before any run; say when a
 * choice cannot matter. @return 0 or 1. */
static int check_setup(const struct sweep_grid *g)
{
	size_t nv[SWEEP_MAX_PARAMS], idx[SWEEP_MAX_PARAMS] = { 0 };
	unsigned char mask[SWEEP_MAX_PARAMS];
	char err[ERRLEN];

	for (size_t i = 0; i < g->n_params; i++) {
		nv[i] = g->param[i].n_val;
		mask[i] = (unsigned char)g->param[i].hw;
	}
	for (size_t w = 0; w < g->n_presets; w++) {
		struct hw_platform base;
		if (hw_platform_load(&base, g->presets[w], err, sizeof err) <
		    0) {
			say(g, "%s", err);
			return 1;
		}
		int has_pim = 0;
		for (unsigned d = 0; d < base.n_dev; d++)
			has_pim |= base.dev[d].kind == HW_DEV_PIM;
		memset(idx, 0, sizeof idx);
		do {
			struct hw_platform plat = base;

			for (size_t i = 0; i < g->n_params; i++) {
				const struct sweep_param *q = &g->param[i];

				if (!q->hw)
					continue;
				if (hw_platform_set(&plat, q->key + 3,
				                    q->val[idx[i]], err,
				                    sizeof err) < 0) {
					say(g, "preset %s: %s", plat.name, err);
					return 1;
				}
			}
		} while (sweep_next(idx, nv, mask, g->n_params));
		for (size_t i = 0; i < g->n_params && !has_pim; i++)
			if (g->param[i].hw &&
			    hw_key_needs_pim(g->param[i].key + 3))
				say(g,
				    "warning: %s has no PIM, so %s has no "
				    "effect on it",
				    base.name, g->param[i].key);
		for (size_t p = 0; p < g->n_policies && base.n_dev == 1; p++)
			if (strcmp(g->policies[p], "sync"))
				say(g,
				    "warning: %s has one device, so policy %s "
				    "runs every task on it in turn and cannot "
				    "differ from sync",
				    base.name, g->policies[p]);
	}
	if (g->models) {
		char dname[512];
		struct trace_model m;
		size_t dl = (size_t)(strchr(g->models, ':') - g->models);
		snprintf(dname, sizeof dname, "%.*s", (int)dl, g->models);
		for (int i = dl ? 0 : 1; i < 2; i++) {
			if (model_preset_load(&m,
			                      i ? g->models + dl + 1 : dname,
			                      err, sizeof err) < 0) {
				say(g, "%s", err);
				return 1;
			}
			model_preset_clear(&m);
		}
	}
	return 0;
}

int sweep_grid_check(struct sweep_grid *g)
{
	int status = plugins_load(g);

	if (status == 0)
		status = check_plugin_values(g);
	if (status == 0)
		status = check_setup(g);
	return status;
}

void sweep_plan_free(struct sweep_plan *p)
{
	free(p->run);
	free(p->vals);
	memset(p, 0, sizeof *p);
}

static int plan_add(struct sweep_plan *pl, size_t *cap, size_t n_params,
                    const struct sweep_run *r, const size_t *idx)
{
	if (pl->n == SWEEP_PLAN_MAX)
		return -E2BIG;
	if (pl->n == *cap) {
		const size_t c = *cap ? 2 * *cap : 64;
		struct sweep_run *nr = realloc(pl->run, c * sizeof *nr);
		size_t *nv;

		if (!nr)
			return -ENOMEM;
		pl->run = nr;
		nv = realloc(pl->vals,
		             c * (n_params ? n_params : 1) * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		pl->vals = nv;
		*cap = c;
	}
	pl->run[pl->n] = *r;
	memcpy(pl->vals + pl->n * n_params, idx, n_params * sizeof *idx);
	pl->n++;
	return 0;
}

/* The runs of trace t on preset w at the point hidx of the hw.* keys:
 * every policy x drafter, at every point of the keys that reach one of
 * the two. @return 0, -E2BIG or -ENOMEM. */
static int plan_point(const struct sweep_grid *g, struct sweep_plan *out,
                      size_t *cap, size_t t, size_t w, const size_t *hidx)
{
	size_t nv[SWEEP_MAX_PARAMS], idx[SWEEP_MAX_PARAMS];
	unsigned char pmask[SWEEP_MAX_PARAMS];
	int rc = 0;

	for (size_t i = 0; i < g->n_params; i++)
		nv[i] = g->param[i].n_val;
	for (size_t p = 0; p < g->n_policies && rc == 0; p++) {
		for (size_t d = 0; d < g->n_drafters && rc == 0; d++) {
			const size_t kd = g->n_policies + d;
			const struct sweep_run r = { t, w, p, d, NULL };

			for (size_t i = 0; i < g->n_params; i++)
				pmask[i] = !g->param[i].hw &&
				           (g->reach[p][i] || g->reach[kd][i]);
			memcpy(idx, hidx, g->n_params * sizeof *idx);
			do {
				rc = plan_add(out, cap, g->n_params, &r, idx);
			} while (rc == 0 &&
			         sweep_next(idx, nv, pmask, g->n_params));
		}
	}
	return rc;
}

int sweep_plan_make(const struct sweep_grid *g, size_t n_traces,
                    struct sweep_plan *out)
{
	size_t nv[SWEEP_MAX_PARAMS], hidx[SWEEP_MAX_PARAMS];
	unsigned char hmask[SWEEP_MAX_PARAMS];
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < g->n_params; i++) {
		nv[i] = g->param[i].n_val;
		hmask[i] = (unsigned char)g->param[i].hw;
	}
	for (size_t t = 0; t < n_traces && rc == 0; t++) {
		for (size_t w = 0; w < g->n_presets && rc == 0; w++) {
			memset(hidx, 0, sizeof hidx);
			do {
				rc = plan_point(g, out, &cap, t, w, hidx);
			} while (rc == 0 &&
			         sweep_next(hidx, nv, hmask, g->n_params));
		}
	}
	if (rc < 0) {
		if (rc == -E2BIG)
			say(g, "the sweep has more than %d runs",
			    SWEEP_PLAN_MAX);
		else
			say(g, "out of memory planning the sweep");
		sweep_plan_free(out);
		return 1;
	}
	for (size_t i = 0; i < out->n; i++)
		out->run[i].val = out->vals + i * g->n_params;
	return 0;
}

int sweep_applies(const struct sweep_grid *g, const struct sweep_run *r,
                  size_t i)
{
	return g->param[i].hw || g->reach[r->policy][i] ||
	       g->reach[g->n_policies + r->drafter][i];
}

void sweep_run_spec(const struct sweep_grid *g, const struct sweep_run *r,
                    struct sweep_spec_kv *kv, struct run_spec *spec)
{
	size_t n_hw = 0;

	for (size_t i = 0; i < g->n_params; i++)
		if (g->param[i].hw)
			kv->hw[n_hw++] = (struct run_kv){
				g->param[i].key + 3, g->param[i].val[r->val[i]]
			};
	spec->preset = g->presets[r->preset];
	spec->hw = kv->hw;
	spec->n_hw = n_hw;
	spec->policy = g->policies[r->policy];
	spec->drafter = g->drafters[r->drafter];
	spec->policy_params = kv->policy;
	spec->n_policy_params = plugin_kv(g, r->policy, r->val, kv->policy);
	spec->drafter_params = kv->drafter;
	spec->n_drafter_params = plugin_kv(g, g->n_policies + r->drafter,
	                                   r->val, kv->drafter);
	spec->seed = g->seed;
	spec->queue_capacity = g->queue_capacity;
	spec->max_draft = g->max_draft;
}

void sweep_config_text(const struct sweep_grid *g, const struct sweep_run *r,
                       char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len,
	                              "seed=%llu queue_capacity=%u "
	                              "max_draft=%u",
	                              (unsigned long long)g->seed,
	                              g->queue_capacity, g->max_draft);
	if (g->models && off < len)
		off += (size_t)snprintf(buf + off, len - off, " models=%s",
		                        g->models);
	for (size_t i = 0; i < g->n_params && off < len; i++) {
		if (!sweep_applies(g, r, i))
			continue;
		off += (size_t)snprintf(buf + off, len - off, " %s=%s",
		                        g->param[i].key,
		                        g->param[i].val[r->val[i]]);
	}
}
