/* plugin.c - find, dlopen and check plugins before calling any of their code. */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "plugin_compat.h"
#include "util.h"

const char *plugin_hook_name(uint32_t hook)
{
	static const char *const names[PLUGIN_N_HOOKS] = {
		[PLUGIN_HOOK_NONE] = "none",
		[PLUGIN_HOOK_LOAD] = "load",
		[PLUGIN_HOOK_CREATE] = "create",
		[PLUGIN_HOOK_DESTROY] = "destroy",
		[PLUGIN_HOOK_COUNTER] = "counter",
		[PLUGIN_HOOK_EXEC_MODE] = "exec_mode",
		[PLUGIN_HOOK_BEGIN_SEQUENCE] = "begin_sequence",
		[PLUGIN_HOOK_AFTER_BATCH] = "after_batch",
		[PLUGIN_HOOK_ON_VERIFY] = "on_verify",
		[PLUGIN_HOOK_ON_DRAFT_STEP] = "on_draft_step",
		[PLUGIN_HOOK_ON_PREVERIFY] = "on_preverify",
		[PLUGIN_HOOK_BEGIN_BATCH] = "begin_batch",
		[PLUGIN_HOOK_DRAFT_TOKEN] = "draft_token",
		[PLUGIN_HOOK_BATCH_RESULT] = "batch_result",
	};
	return hook < PLUGIN_N_HOOKS ? names[hook] : "?";
}

/* Mark the host inside hook of p (plugin.where). @return the word's
 * value before, for leave(): a hook the engine refused a value of stays
 * named while the failed run's plugins are destroyed. */
static uint32_t enter(const struct plugin *p, uint32_t hook)
{
	if (!p->where)
		return 0;
	const uint32_t before = *p->where;
	*p->where = PLUGIN_WHERE(p->desc->kind, hook);
	return before;
}

static void leave(const struct plugin *p, uint32_t before)
{
	if (p->where)
		*p->where = before;
}

static int file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

const char *plugin_builtin_dir(void)
{
	return util_exe_in_build_tree() ? AHASD_BUILD_PLUGIN_DIR
	                                : AHASD_PLUGIN_DIR;
}

int plugin_resolve(const char *name, char *out, size_t outlen, char *err,
                   size_t errlen)
{
	if (!name || !*name) {
		snprintf(err, errlen, "empty plugin name");
		return -EINVAL;
	}
	if (strchr(name, '/')) {
		char real[PATH_MAX];
		if (!file_exists(name) || !realpath(name, real)) {
			snprintf(err, errlen, "plugin '%s': %s", name,
			         strerror(errno));
			return -ENOENT;
		}
		if (strlen(real) >= outlen)
			return -ENAMETOOLONG;
		strcpy(out, real); /* the run record names the file itself */
		return 0;
	}
	const char *env = getenv("AHASD_PLUGIN_PATH");
	const char *builtin = plugin_builtin_dir();
	const char *installed = AHASD_PLUGIN_DIR;
	if (strcmp(builtin, installed) == 0)
		installed = NULL; /* not running from the build tree */
	const char *dirs[2] = { builtin, installed };
	if (util_find_file(env, dirs, 2, name, ".so", out, outlen) == 0)
		return 0;
	snprintf(err, errlen,
	         "plugin '%s' not found (looked in AHASD_PLUGIN_PATH=%s, "
	         "%s%s%s)",
	         name, env ? env : "(unset)", builtin, installed ? ", " : "",
	         installed ? installed : "");
	return -ENOENT;
}

uint32_t plugin_needs(const struct plugin *p)
{
	const struct ahasd_plugin *d = p->desc;

	if (AHASD_HAS_HOOK(d, struct ahasd_plugin, instance_needs))
		return d->instance_needs(p->state);
	if (AHASD_HAS_FIELD(d, struct ahasd_plugin, needs))
		return d->needs;
	return 0;
}

/* Check everything the host relies on before calling code of an ABI-3
 * plugin. The descriptor must hold every field of ABI 3 (later ones are
 * read only through AHASD_HAS_FIELD), each required hook must be present,
 * and every parameter must have a default (ahasd_plugin.h, rule 5). */
static int check_descriptor(const struct ahasd_plugin *d, const char *path,
                            uint32_t kind, char *err, size_t errlen)
{
	if (!AHASD_HAS_FIELD(d, struct ahasd_plugin, drafter)) {
		snprintf(err, errlen,
		         "%s: descriptor is %u bytes, expected at least %zu",
		         path, d->struct_size,
		         offsetof(struct ahasd_plugin, drafter) +
		                 sizeof d->drafter);
		return -EPROTO;
	}
	if (d->kind != kind) {
		snprintf(err, errlen, "%s: is a %s, expected a %s", path,
		         plugin_kind_name(d->kind), plugin_kind_name(kind));
		return -EINVAL;
	}
	if (!d->name || !d->version || !d->create || !d->destroy) {
		snprintf(
		        err, errlen,
		        "%s: descriptor lacks name, version, create or destroy",
		        path);
		return -EINVAL;
	}
	for (const struct ahasd_param *q = d->params; q && q->key; q++) {
		if (!q->default_value) {
			snprintf(err, errlen,
			         "%s: parameter '%s' has no default value",
			         path, q->key);
			return -EINVAL;
		}
	}
	if (kind == AHASD_PLUGIN_POLICY) {
		const struct ahasd_policy_hooks *h = d->policy;
		if (!h ||
		    !AHASD_HAS_HOOK(h, struct ahasd_policy_hooks, exec_mode)) {
			snprintf(err, errlen,
			         "%s: policy hook table missing or lacks "
			         "exec_mode",
			         path);
			return -EINVAL;
		}
	} else {
		const struct ahasd_drafter_hooks *h = d->drafter;
		if (!h || !AHASD_HAS_HOOK(h, struct ahasd_drafter_hooks,
		                          draft_token)) {
			snprintf(err, errlen,
			         "%s: drafter hook table missing or lacks "
			         "draft_token",
			         path);
			return -EINVAL;
		}
	}
	return 0;
}

/* Check the descriptor at sym, of any ABI this host supports, and set
 * p->desc to what the engine will call. The ABI version is the first
 * field in every version's layout. */
static int adopt_descriptor(struct plugin *p, const void *sym, const char *path,
                            uint32_t kind, char *err, size_t errlen)
{
	const uint32_t abi = *(const uint32_t *)sym;
	int rc;

	if (abi < AHASD_PLUGIN_ABI_MIN || abi > AHASD_PLUGIN_ABI_VERSION) {
		snprintf(err, errlen,
		         "%s: plugin ABI version %u, this host supports %u to "
		         "%u "
		         "(rebuild the plugin against this ahasd_plugin.h)",
		         path, abi, AHASD_PLUGIN_ABI_MIN,
		         AHASD_PLUGIN_ABI_VERSION);
		return -EPROTO;
	}
	if (abi <= PLUGIN_COMPAT_ABI_MAX) {
		rc = plugin_compat_open(&p->compat, sym, path, kind, err,
		                        errlen);
		if (rc < 0)
			return rc;
		p->desc = plugin_compat_desc(p->compat);
	} else {
		rc = check_descriptor(sym, path, kind, err, errlen);
		if (rc < 0)
			return rc;
		p->desc = sym;
	}
	p->abi_version = abi;
	p->opened = 1;
	return 0;
}

static const struct ahasd_param *find_param(const struct ahasd_plugin *d,
                                            const char *key)
{
	for (const struct ahasd_param *p = d->params; p && p->key; p++)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

int plugin_args(const struct plugin *p, const char *const *keys,
                const char *const *values, size_t n, const char ***out_keys,
                const char ***out_values)
{
	size_t m = 0;
	for (const struct ahasd_param *d = p->desc->params; d && d->key; d++)
		m++;
	const char **k = malloc((m ? m : 1) * sizeof *k);
	const char **v = malloc((m ? m : 1) * sizeof *v);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m; i++) {
		const struct ahasd_param *d = &p->desc->params[i];
		k[i] = d->key;
		v[i] = d->default_value ? d->default_value : "";
		for (size_t j = 0; j < n; j++)
			if (strcmp(keys[j], d->key) == 0)
				v[i] = values[j];
	}
	*out_keys = k;
	*out_values = v;
	return (int)m;
}

/* The run record: "k=v;k=v" of what create() got (or, for ABI 1 and 2,
 * would have got), in declared order. */
static void format_params(struct plugin *p, const char *const *k,
                          const char *const *v, size_t m)
{
	size_t off = 0;
	p->params[0] = '\0';
	for (size_t i = 0; i < m; i++) {
		int w = snprintf(p->params + off, sizeof p->params - off,
		                 "%s%s=%s", off ? ";" : "", k[i], v[i]);
		if (w < 0 || (size_t)w >= sizeof p->params - off)
			break;
		off += (size_t)w;
	}
}

int plugin_open(struct plugin *p, const char *name_or_path, uint32_t kind,
                char *err, size_t errlen)
{
	int rc;
	const void *sym;
	memset(p, 0, sizeof *p);
	rc = plugin_resolve(name_or_path, p->path, sizeof p->path, err, errlen);
	if (rc < 0)
		return rc;

	p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "%s: cannot load: %s", p->path,
		         dlerror());
		rc = -ENOEXEC;
		goto error;
	}
	sym = dlsym(p->dl, AHASD_PLUGIN_SYMBOL);
	if (!sym) {
		snprintf(err, errlen,
		         "%s: not an ahasd-replay plugin (no '%s' symbol)",
		         p->path, AHASD_PLUGIN_SYMBOL);
		rc = -ENOEXEC;
		goto error;
	}
	rc = adopt_descriptor(p, sym, p->path, kind, err, errlen);
	if (rc < 0)
		goto error;
	return 0;
error:
	plugin_unload(p);
	return rc;
}

int plugin_open_desc(struct plugin *p, const struct ahasd_plugin *desc,
                     const char *label, uint32_t kind, char *err, size_t errlen)
{
	int rc;
	memset(p, 0, sizeof *p);
	snprintf(p->path, sizeof p->path, "%s", label);
	rc = adopt_descriptor(p, desc, p->path, kind, err, errlen);
	if (rc < 0)
		plugin_unload(p);
	return rc;
}

int plugin_declares(const struct plugin *p, const char *key)
{
	return find_param(p->desc, key) != NULL;
}

int plugin_create(struct plugin *p, const char *const *keys,
                  const char *const *values, size_t n, char *err, size_t errlen)
{
	const char **ak = NULL, **av = NULL;
	char perr[512] = "";
	int rc, m;

	if (!p->opened) {
		/* p->desc set by hand: check it as plugin_open would */
		const struct ahasd_plugin *d = p->desc;
		char label[sizeof p->path];
		snprintf(label, sizeof label, "%s", p->path);
		rc = plugin_open_desc(p, d, label, d->kind, err, errlen);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (!find_param(p->desc, keys[i])) {
			size_t off = (size_t)snprintf(
			        err, errlen,
			        "%s: unknown parameter '%s' for %s (known:",
			        p->path, keys[i], p->desc->name);
			for (const struct ahasd_param *d = p->desc->params;
			     d && d->key && off < errlen; d++)
				off += (size_t)snprintf(err + off, errlen - off,
				                        " %s", d->key);
			if (off < errlen)
				snprintf(err + off, errlen - off, ")");
			rc = -EINVAL;
			goto error;
		}
	}
	m = plugin_args(p, keys, values, n, &ak, &av);
	if (m < 0) {
		snprintf(err, errlen, "%s: out of memory", p->path);
		rc = m;
		goto error;
	}
	const uint32_t before = enter(p, PLUGIN_HOOK_CREATE);
	if (p->compat) {
		rc = plugin_compat_create(p->compat, &p->state, keys, values, n,
		                          perr, sizeof perr);
	} else {
		const struct ahasd_create_args args = {
			sizeof args, AHASD_PLUGIN_ABI_VERSION, (size_t)m, ak, av
		};
		rc = p->desc->create(&p->state, &args, perr, sizeof perr);
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", p->desc->name,
		         *perr ? perr : "create failed");
		p->state = NULL;
		rc = -EINVAL;
		goto error;
	}
	leave(p, before);
	format_params(p, ak, av, (size_t)m);
	free(ak);
	free(av);
	return 0;
error:
	free(ak);
	free(av);
	plugin_unload(p);
	return rc;
}

int plugin_load(struct plugin *p, const char *name_or_path, uint32_t kind,
                const char *const *keys, const char *const *values, size_t n,
                char *err, size_t errlen)
{
	int rc = plugin_open(p, name_or_path, kind, err, errlen);
	if (rc < 0)
		return rc;
	return plugin_create(p, keys, values, n, err, errlen);
}

void plugin_unload(struct plugin *p)
{
	if (!p)
		return;
	if (p->desc && p->state) {
		const uint32_t before = enter(p, PLUGIN_HOOK_DESTROY);
		p->desc->destroy(p->state);
		leave(p, before);
	}
	if (p->dl)
		dlclose(p->dl);
	plugin_compat_free(&p->compat);
	memset(p, 0, sizeof *p);
}

int plugin_counters(const struct plugin *p, const char *prefix,
                    char names[][96], double *vals, size_t *n, size_t max,
                    char *err, size_t errlen)
{
	const char *kind = p->desc->kind == AHASD_PLUGIN_POLICY ? "policy"
	                                                        : "drafter";
	if (!AHASD_HAS_HOOK(p->desc, struct ahasd_plugin, counter))
		return 0;
	const uint32_t before = enter(p, PLUGIN_HOOK_COUNTER);
	for (uint32_t i = 0;; i++) {
		const char *name = NULL;
		double v = 0;
		char num[UTIL_NUM_LEN];
		if (!p->desc->counter(p->state, i, &name, &v))
			break;
		if (!name || !*name) {
			snprintf(err, errlen,
			         "%s %s: counter returned no name "
			         "for counter %u",
			         kind, p->desc->name, i);
			return -EPROTO;
		}
		if (*n >= max) {
			snprintf(err, errlen,
			         "%s %s: counter returned more "
			         "counters than the %zu the host keeps (at "
			         "'%.64s')",
			         kind, p->desc->name, max, name);
			return -EPROTO;
		}
		int w = snprintf(names[*n], sizeof names[*n], "%s.%s", prefix,
		                 name);
		if (w < 0 || (size_t)w >= sizeof names[*n]) {
			snprintf(err, errlen,
			         "%s %s: counter returned the name "
			         "'%.120s' of %zu bytes; expected at most %zu",
			         kind, p->desc->name, name, strlen(name),
			         sizeof names[*n] - strlen(prefix) - 2);
			return -EPROTO;
		}
		if (!isfinite(v)) {
			snprintf(err, errlen,
			         "%s %s: counter returned %s = %s; "
			         "expected a finite number",
			         kind, p->desc->name, name,
			         util_fmt_double(num, v));
			return -EPROTO;
		}
		vals[(*n)++] = v;
	}
	leave(p, before);
	return 0;
}
