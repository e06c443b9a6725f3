/* plugin_compat.h - plugins built against the ABI 1 and 2 headers, under
 * this host (private to the loader, replay/plugin.c).
 *
 * ABI 3 put struct_size at the head of every struct the host passes and
 * gave create() a struct ahasd_create_args, so those layouts are not
 * prefixes of the old ones (ahasd_plugin.h, rule 6). For an older plugin
 * the loader builds a struct plugin_compat: an ABI-3 descriptor whose hooks
 * translate each call into the layout the plugin was built with (frozen
 * here, as in tests/abi/v2/ahasd_plugin.h; ABI 1 is a prefix of 2) and
 * back. The engine sees only ABI 3. */
#ifndef AHASD_HOST_PLUGIN_COMPAT_H
#define AHASD_HOST_PLUGIN_COMPAT_H

#include <stddef.h>
#include <stdint.h>

#include "ahasd_plugin.h"

/* The newest ABI whose layouts this file keeps. */
#define PLUGIN_COMPAT_ABI_MAX 2u

struct plugin_compat;

/** "scheduling policy", "drafting algorithm" or "unknown kind" (for the
 * messages of both loaders; here, below plugin.c, so that this file needs
 * nothing of it). */
const char *plugin_kind_name(uint32_t kind);

/** Check the descriptor at sym, of abi_version 1 or 2 in its old layout
 * (size, kind, name, version, create, destroy, the required hook), and
 * build the ABI-3 descriptor the engine calls. @return 0, or a negative
 * errno with the path in err. */
int plugin_compat_open(struct plugin_compat **out, const void *sym,
                       const char *path, uint32_t kind, char *err,
                       size_t errlen);

/** The ABI-3 descriptor: name, version, description and params are the
 * plugin's own, every hook and destroy() translate. Its create() only
 * fails: create through plugin_compat_create(). */
const struct ahasd_plugin *plugin_compat_desc(const struct plugin_compat *c);

/** The plugin's own create(), as ABI 1 and 2 called it: only the keys the
 * user set. On success *st is the state to give the descriptor's hooks
 * (and its destroy()). */
int plugin_compat_create(struct plugin_compat *c, void **st,
                         const char *const *keys, const char *const *values,
                         size_t n, char *err, size_t errlen);

/** Free what plugin_compat_open() built (after destroy()); NULL is fine. */
void plugin_compat_free(struct plugin_compat **c);

#endif
