/* policy_sync.c - operator-level synchronous scheduling (SpecPIM style).
 *
 * Every draft step and verification runs its operators across the devices,
 * each operator where it is fastest; the devices wait on each other and no
 * drafting happens while a verification runs. No parameters. */
#include <stddef.h>

#include "ahasd_plugin.h"

static int sync_create(void **st, const struct ahasd_create_args *args,
                       char *err, size_t errlen)
{
	(void)args;
	(void)err;
	(void)errlen;
	static const char token = 0;
	*st = (void *)&token; /* stateless */
	return 0;
}

static void sync_destroy(void *st)
{
	(void)st;
}

static uint32_t sync_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_OPERATOR_SYNC;
}

static const struct ahasd_policy_hooks sync_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = sync_mode,
};

static const struct ahasd_param sync_params[] = { { NULL, NULL, NULL } };

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "sync",
	.version = "1.0",
	.description = "operator-level synchronous scheduling: operators split "
	               "across devices, no look-ahead",
	.params = sync_params,
	.create = sync_create,
	.destroy = sync_destroy,
	.policy = &sync_hooks,
};
