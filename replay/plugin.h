/* plugin.h - host side of the plugin ABI: find, dlopen, check, create.
 * The contract itself is policies/ahasd_plugin.h. */
#ifndef AHASD_HOST_PLUGIN_H
#define AHASD_HOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "ahasd_plugin.h"

#define PLUGIN_PARAMS_MAX 32

struct plugin {
	void *dl;
	const struct ahasd_plugin *desc;
	void *state;
	char path[1024];
	/* effective parameters, defaults filled in: "k=v;k=v" in declared order */
	char params[1024];
};

/** Resolve a plugin name as a user types it: a path (contains '/'), or a
 * bare name with or without ".so" looked up in $AHASD_PLUGIN_PATH
 * (colon-separated), then the build tree when running from it, then the
 * installed plugin directory. @return 0 or -ENOENT with the places tried. */
int plugin_resolve(const char *name, char *out, size_t outlen,
                   char *err, size_t errlen);

/** Load, check the descriptor (ABI version within AHASD_PLUGIN_ABI_MIN to
 * AHASD_PLUGIN_ABI_VERSION, struct size, kind, required hooks), validate
 * the key=value parameters against its declared list and create its state.
 * keys/values may be NULL when n == 0. On failure nothing stays loaded. */
int plugin_load(struct plugin *p, const char *name_or_path, uint32_t kind,
                const char *const *keys, const char *const *values, size_t n,
                char *err, size_t errlen);
void plugin_unload(struct plugin *p);

/** The two halves of plugin_load: dlopen and check the descriptor ... */
int plugin_open(struct plugin *p, const char *name_or_path, uint32_t kind,
                char *err, size_t errlen);
/** ... then validate parameters and create the state (unloads on error). */
int plugin_create(struct plugin *p, const char *const *keys,
                  const char *const *values, size_t n, char *err,
                  size_t errlen);
/** Append the plugin's own counters as "PREFIX.name" into names/vals from
 * index at, up to max. @return the new count. */
size_t plugin_counters(const struct plugin *p, const char *prefix,
                       char names[][96], double *vals, size_t at, size_t max);

/** 1 if the plugin declares parameter key. */
int plugin_declares(const struct plugin *p, const char *key);

/** Directory of built-in plugins for this executable (build tree or
 * installed), or NULL. */
const char *plugin_builtin_dir(void);

#endif
