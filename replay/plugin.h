/* plugin.h - host side of the plugin ABI: find, dlopen, check, create.
 * The contract itself is policies/ahasd_plugin.h. */
#ifndef AHASD_HOST_PLUGIN_H
#define AHASD_HOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "ahasd_plugin.h"

#define PLUGIN_PARAMS_MAX 32

/* Where the host is in a plugin: PLUGIN_WHERE(kind, hook) while a call
 * into it runs, 0 outside. Kept in a word that a watcher outside the
 * process can read (plugin.where), so that a crash or a time-out can be
 * put down to the plugin and the hook it was in. */
enum plugin_hook {
	PLUGIN_HOOK_NONE = 0,
	PLUGIN_HOOK_LOAD, /* dlopen: the plugin's constructors */
	PLUGIN_HOOK_CREATE,
	PLUGIN_HOOK_DESTROY,
	PLUGIN_HOOK_COUNTER,
	PLUGIN_HOOK_EXEC_MODE,      /* policy hooks */
	PLUGIN_HOOK_BEGIN_SEQUENCE, /* both kinds */
	PLUGIN_HOOK_AFTER_BATCH,
	PLUGIN_HOOK_ON_VERIFY,
	PLUGIN_HOOK_ON_DRAFT_STEP,
	PLUGIN_HOOK_ON_PREVERIFY,
	PLUGIN_HOOK_BEGIN_BATCH, /* drafter hooks */
	PLUGIN_HOOK_DRAFT_TOKEN,
	PLUGIN_HOOK_BATCH_RESULT,
	PLUGIN_N_HOOKS
};
#define PLUGIN_WHERE(kind, hook) ((uint32_t)(kind) << 8 | (uint32_t)(hook))
#define PLUGIN_WHERE_KIND(w)     ((uint32_t)(w) >> 8)
#define PLUGIN_WHERE_HOOK(w)     ((uint32_t)(w)&0xffu)

/** The hook's name as ahasd_plugin.h spells it ("after_batch"), "load"
 * for PLUGIN_HOOK_LOAD, "?" past the table. */
const char *plugin_hook_name(uint32_t hook);

struct plugin_compat;

struct plugin {
	void *dl;
	/* what the engine calls: the plugin's own descriptor, or for a plugin
	 * of ABI 1 or 2 the host's ABI-3 translation of it (plugin_compat.h) */
	const struct ahasd_plugin *desc;
	void *state;
	char path[1024];
	/* effective parameters, defaults filled in: "k=v;k=v" in declared order */
	char params[1024];
	uint32_t abi_version;         /* the plugin's own */
	struct plugin_compat *compat; /* ABI 1 or 2 only */
	int opened;                   /* descriptor checked */
	/* optional, set after plugin_open: the word the host sets to
	 * PLUGIN_WHERE(kind, hook) around every call into this plugin (here
	 * and in the engine) and back after it (to 0, or for create, destroy
	 * and counter to what it was). A call whose return value is refused
	 * leaves it set, and destroying the plugins after that keeps it. */
	volatile uint32_t *where;
};

/** Resolve a plugin name as a user types it: a path (contains '/'), or a
 * bare name with or without ".so" looked up in $AHASD_PLUGIN_PATH
 * (colon-separated), then the build tree when running from it, then the
 * installed plugin directory. @return 0 or -ENOENT with the places tried. */
int plugin_resolve(const char *name, char *out, size_t outlen, char *err,
                   size_t errlen);

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
/** ... then validate parameters and create the state (unloads on error).
 * A plugin of ABI 3 gets every parameter it declares (plugin_args); one of
 * ABI 1 or 2, as before, only those in keys. (A caller that set p->desc
 * by hand, without plugin_open, gets it checked here.) */
int plugin_create(struct plugin *p, const char *const *keys,
                  const char *const *values, size_t n, char *err,
                  size_t errlen);
/** plugin_open for a descriptor already in memory (no dlopen): check it
 * as plugin_open does; label stands for the path in messages. */
int plugin_open_desc(struct plugin *p, const struct ahasd_plugin *desc,
                     const char *label, uint32_t kind, char *err,
                     size_t errlen);
/** The parameters create() gets: every key the plugin declares, in its
 * order, with the last value keys/values give it, else its default.
 * @return their number (0 if the plugin declares none), or -ENOMEM; on
 * success *out_keys and *out_values are malloc'd arrays for free(). */
int plugin_args(const struct plugin *p, const char *const *keys,
                const char *const *values, size_t n, const char ***out_keys,
                const char ***out_values);
/** Append the plugin's own counters as "PREFIX.name" into names/vals from
 * index *n on, up to max, and advance *n. Each must have a name, fit in
 * 96 bytes with the prefix and have a finite value, and all of them must
 * fit below max. @return 0, or -EPROTO with a message naming the plugin,
 * the counter, the value and what was expected (plugin.where is left on
 * counter). */
int plugin_counters(const struct plugin *p, const char *prefix,
                    char names[][96], double *vals, size_t *n, size_t max,
                    char *err, size_t errlen);

/** What the created plugin needs of a trace (AHASD_NEEDS_*): its
 * instance_needs(state) when it has that hook, else its descriptor's
 * needs; 0 for a plugin of ABI 1 to 3 (the fields came with ABI 4). */
uint32_t plugin_needs(const struct plugin *p);

/** 1 if the plugin declares parameter key. */
int plugin_declares(const struct plugin *p, const char *key);

/** Directory of built-in plugins for this executable (build tree or
 * installed), or NULL. */
const char *plugin_builtin_dir(void);

#endif
