/* policy_async.c - naive task-level asynchronous scheduling (PEARL/AMUSD).
 *
 * Drafting runs on the draft device and verification on the verify device,
 * decoupled by queues. The draft device always drafts ahead on top of
 * unverified batches, bounded only by the host's queue capacity. */
#include <stddef.h>

#include "ahasd_plugin.h"

static int async_create(void **st, const struct ahasd_create_args *args,
                        char *err, size_t errlen)
{
	(void)args;
	(void)err;
	(void)errlen;
	static const char token = 0;
	*st = (void *)&token; /* stateless */
	return 0;
}

static void async_destroy(void *st)
{
	(void)st;
}

static uint32_t async_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

/* after_batch left NULL: the host's default is to keep drafting. */
static const struct ahasd_policy_hooks async_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = async_mode,
};

static const struct ahasd_param async_params[] = { { NULL, NULL, NULL } };

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "async",
	.version = "1.0",
	.description = "naive task-level asynchronous scheduling: unbounded "
	               "look-ahead up to the queue capacity",
	.params = async_params,
	.create = async_create,
	.destroy = async_destroy,
	.policy = &async_hooks,
};
