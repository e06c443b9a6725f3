/* plugin_compat.c - plugins of ABI 1 and 2 under an ABI-3 host: their
 * layouts, frozen, and one translating hook per hook (see the header). */
#include "plugin_compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *plugin_kind_name(uint32_t kind)
{
	switch (kind) {
	case AHASD_PLUGIN_POLICY: return "scheduling policy";
	case AHASD_PLUGIN_DRAFTER: return "drafting algorithm";
	default: return "unknown kind";
	}
}

/* ---- the layouts of tests/abi/v2/ahasd_plugin.h, field for field ---- */

struct abi2_seq_info {
	uint32_t seq_id;
	uint32_t prompt_len;
	uint32_t n_tokens;
	uint64_t seed;
};

struct abi2_draft_token {
	uint64_t batch_id;
	uint32_t index;
	float entropy;
	float top1;
	double now_s;
};

struct abi2_batch_result {
	uint64_t batch_id;
	uint32_t drafted;
	uint32_t accepted;
	uint32_t committed;
	int discarded;
	double round_s;
	double now_s;
};

struct abi2_drafter_hooks {
	uint32_t struct_size;
	void (*begin_sequence)(void *st, const struct abi2_seq_info *seq);
	void (*begin_batch)(void *st, uint64_t batch_id, uint32_t max_len);
	int (*draft_token)(void *st, const struct abi2_draft_token *tok);
	void (*batch_result)(void *st, const struct abi2_batch_result *res);
};

struct abi2_decision {
	uint32_t next;
	uint32_t count;
};

struct abi2_host_view {
	double now_s;
	double verify_freq_hz;
	double draft_freq_hz;
	int shared_device;
	int verify_busy;
	double verify_start_s;
	uint32_t verify_kv_len;
	uint32_t verify_tokens;
	uint32_t queued_batches;
	uint32_t queued_tokens;
	uint32_t preverifiable;
	uint32_t unverified_batches;
	uint32_t queue_capacity;
	uint32_t committed;
	uint32_t kv_len;
	double prof_verify_s_per_kv;
	double prof_draft_s;
	double prof_preverify_s_per_token;
};

struct abi2_batch_info {
	uint64_t batch_id;
	uint32_t length;
	float mean_entropy;
	uint32_t lookahead;
};

/* ABI 1 ends after discarded_batches */
struct abi2_verify_info {
	uint64_t batch_id;
	uint32_t length;
	uint32_t accepted;
	int full;
	uint32_t kv_len;
	double duration_s;
	uint32_t discarded_batches;
	uint32_t corrected;
	uint32_t pass_index;
	uint32_t pass_batches;
};

struct abi2_task_info {
	uint32_t tokens;
	double duration_s;
	uint32_t discarded_batches;
};

struct abi2_policy_hooks {
	uint32_t struct_size;
	uint32_t (*exec_mode)(void *st);
	void (*begin_sequence)(void *st, const struct abi2_seq_info *seq);
	void (*after_batch)(void *st, const struct abi2_host_view *v,
	                    const struct abi2_batch_info *b,
	                    struct abi2_decision *d);
	void (*on_verify)(void *st, const struct abi2_host_view *v,
	                  const struct abi2_verify_info *r);
	void (*on_draft_step)(void *st, const struct abi2_task_info *t);
	void (*on_preverify)(void *st, const struct abi2_task_info *t,
	                     int rejected);
};

struct abi2_plugin {
	uint32_t abi_version;
	uint32_t struct_size;
	uint32_t kind;
	const char *name;
	const char *version;
	const char *description;
	const struct ahasd_param *params;
	int (*create)(void **st, const char *const *keys,
	              const char *const *values, size_t n, char *err,
	              size_t errlen);
	void (*destroy)(void *st);
	int (*counter)(void *st, uint32_t i, const char **name, double *value);
	const struct abi2_policy_hooks *policy;
	const struct abi2_drafter_hooks *drafter;
};

/* ---- the translation ---- */

struct plugin_compat {
	struct ahasd_plugin desc; /* ABI 3: what the engine calls */
	struct ahasd_policy_hooks policy;
	struct ahasd_drafter_hooks drafter;
	const struct abi2_plugin *old; /* the plugin's own descriptor */
	void *st;                      /* the plugin's own state */
};

/* Every hook below gets the struct plugin_compat as its state. */
#define OLD(st) ((const struct plugin_compat *)(st))

static struct abi2_seq_info seq_info(const struct ahasd_seq_info *q)
{
	return (struct abi2_seq_info){ q->seq_id, q->prompt_len, q->n_tokens,
		                       q->seed };
}

static struct abi2_host_view host_view(const struct ahasd_host_view *v)
{
	return (struct abi2_host_view){
		v->now_s,          v->verify_freq_hz,
		v->draft_freq_hz,  v->shared_device,
		v->verify_busy,    v->verify_start_s,
		v->verify_kv_len,  v->verify_tokens,
		v->queued_batches, v->queued_tokens,
		v->preverifiable,  v->unverified_batches,
		v->queue_capacity, v->committed,
		v->kv_len,         v->prof_verify_s_per_kv,
		v->prof_draft_s,   v->prof_preverify_s_per_token
	};
}

static struct abi2_task_info task_info(const struct ahasd_task_info *t)
{
	return (struct abi2_task_info){ t->tokens, t->duration_s,
		                        t->discarded_batches };
}

static int compat_create(void **st, const struct ahasd_create_args *args,
                         char *err, size_t errlen)
{
	(void)st;
	(void)args;
	snprintf(err, errlen,
	         "internal: an ABI-%u plugin is created through "
	         "plugin_compat_create()",
	         PLUGIN_COMPAT_ABI_MAX);
	return -ENOTSUP;
}

static void compat_destroy(void *st)
{
	struct plugin_compat *c = st;

	if (c->st)
		c->old->destroy(c->st);
	c->st = NULL;
}

static int compat_counter(void *st, uint32_t i, const char **name,
                          double *value)
{
	return OLD(st)->old->counter(OLD(st)->st, i, name, value);
}

static uint32_t compat_exec_mode(void *st)
{
	return OLD(st)->old->policy->exec_mode(OLD(st)->st);
}

static void compat_policy_begin_sequence(void *st,
                                         const struct ahasd_seq_info *seq)
{
	const struct abi2_seq_info q = seq_info(seq);

	OLD(st)->old->policy->begin_sequence(OLD(st)->st, &q);
}

static void compat_after_batch(void *st, const struct ahasd_host_view *v,
                               const struct ahasd_batch_info *b,
                               struct ahasd_decision *d)
{
	const struct abi2_host_view ov = host_view(v);
	const struct abi2_batch_info ob = { b->batch_id, b->length,
		                            b->mean_entropy, b->lookahead };
	struct abi2_decision od = { d->next, d->count };

	OLD(st)->old->policy->after_batch(OLD(st)->st, &ov, &ob, &od);
	d->next = od.next;
	d->count = od.count;
}

static void compat_on_verify(void *st, const struct ahasd_host_view *v,
                             const struct ahasd_verify_info *r)
{
	const struct abi2_host_view ov = host_view(v);
	const struct abi2_verify_info o = { r->batch_id,
		                            r->length,
		                            r->accepted,
		                            r->full,
		                            r->kv_len,
		                            r->duration_s,
		                            r->discarded_batches,
		                            r->corrected,
		                            r->pass_index,
		                            r->pass_batches };

	OLD(st)->old->policy->on_verify(OLD(st)->st, &ov, &o);
}

static void compat_on_draft_step(void *st, const struct ahasd_task_info *t)
{
	const struct abi2_task_info o = task_info(t);

	OLD(st)->old->policy->on_draft_step(OLD(st)->st, &o);
}

static void compat_on_preverify(void *st, const struct ahasd_task_info *t,
                                int rejected)
{
	const struct abi2_task_info o = task_info(t);

	OLD(st)->old->policy->on_preverify(OLD(st)->st, &o, rejected);
}

static void compat_drafter_begin_sequence(void *st,
                                          const struct ahasd_seq_info *seq)
{
	const struct abi2_seq_info q = seq_info(seq);

	OLD(st)->old->drafter->begin_sequence(OLD(st)->st, &q);
}

static void compat_begin_batch(void *st, uint64_t batch_id, uint32_t max_len)
{
	OLD(st)->old->drafter->begin_batch(OLD(st)->st, batch_id, max_len);
}

static int compat_draft_token(void *st, const struct ahasd_draft_token *tok)
{
	const struct abi2_draft_token o = { tok->batch_id, tok->index,
		                            tok->entropy, tok->top1,
		                            tok->now_s };

	return OLD(st)->old->drafter->draft_token(OLD(st)->st, &o);
}

static void compat_batch_result(void *st, const struct ahasd_batch_result *r)
{
	const struct abi2_batch_result o = { r->batch_id,  r->drafted,
		                             r->accepted,  r->committed,
		                             r->discarded, r->round_s,
		                             r->now_s };

	OLD(st)->old->drafter->batch_result(OLD(st)->st, &o);
}

/* The translated hook where the old table has the hook, else NULL. */
#define PICK(h, type, m, fn) (AHASD_HAS_HOOK(h, type, m) ? (fn) : NULL)

int plugin_compat_open(struct plugin_compat **out, const void *sym,
                       const char *path, uint32_t kind, char *err,
                       size_t errlen)
{
	const struct abi2_plugin *d = sym;
	struct plugin_compat *c = NULL;
	int rc;

	*out = NULL;
	if (d->abi_version < AHASD_PLUGIN_ABI_MIN ||
	    d->abi_version > PLUGIN_COMPAT_ABI_MAX ||
	    d->struct_size < sizeof *d) {
		snprintf(err, errlen,
		         "%s: descriptor of ABI %u is %u bytes, "
		         "expected at least %zu",
		         path, d->abi_version, d->struct_size, sizeof *d);
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
	c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	c->old = d;
	c->desc = (struct ahasd_plugin){
		.abi_version = AHASD_PLUGIN_ABI_VERSION,
		.struct_size = sizeof c->desc,
		.kind = d->kind,
		.name = d->name,
		.version = d->version,
		.description = d->description,
		.params = d->params,
		.create = compat_create,
		.destroy = compat_destroy,
		.counter = d->counter ? compat_counter : NULL,
	};
	if (kind == AHASD_PLUGIN_POLICY) {
		const struct abi2_policy_hooks *h = d->policy;
		if (!h ||
		    !AHASD_HAS_HOOK(h, struct abi2_policy_hooks, exec_mode)) {
			snprintf(err, errlen,
			         "%s: policy hook table missing or lacks "
			         "exec_mode",
			         path);
			rc = -EINVAL;
			goto error;
		}
		c->policy = (struct ahasd_policy_hooks){
			.struct_size = sizeof c->policy,
			.exec_mode = compat_exec_mode,
			.begin_sequence = PICK(h, struct abi2_policy_hooks,
			                       begin_sequence,
			                       compat_policy_begin_sequence),
			.after_batch = PICK(h, struct abi2_policy_hooks,
			                    after_batch, compat_after_batch),
			.on_verify = PICK(h, struct abi2_policy_hooks,
			                  on_verify, compat_on_verify),
			.on_draft_step = PICK(h, struct abi2_policy_hooks,
			                      on_draft_step,
			                      compat_on_draft_step),
			.on_preverify = PICK(h, struct abi2_policy_hooks,
			                     on_preverify, compat_on_preverify),
		};
		c->desc.policy = &c->policy;
	} else {
		const struct abi2_drafter_hooks *h = d->drafter;
		if (!h || !AHASD_HAS_HOOK(h, struct abi2_drafter_hooks,
		                          draft_token)) {
			snprintf(err, errlen,
			         "%s: drafter hook table missing or lacks "
			         "draft_token",
			         path);
			rc = -EINVAL;
			goto error;
		}
		c->drafter = (struct ahasd_drafter_hooks){
			.struct_size = sizeof c->drafter,
			.begin_sequence = PICK(h, struct abi2_drafter_hooks,
			                       begin_sequence,
			                       compat_drafter_begin_sequence),
			.begin_batch = PICK(h, struct abi2_drafter_hooks,
			                    begin_batch, compat_begin_batch),
			.draft_token = compat_draft_token,
			.batch_result = PICK(h, struct abi2_drafter_hooks,
			                     batch_result, compat_batch_result),
		};
		c->desc.drafter = &c->drafter;
	}
	*out = c;
	return 0;
error:
	free(c);
	return rc;
}

const struct ahasd_plugin *plugin_compat_desc(const struct plugin_compat *c)
{
	return &c->desc;
}

int plugin_compat_create(struct plugin_compat *c, void **st,
                         const char *const *keys, const char *const *values,
                         size_t n, char *err, size_t errlen)
{
	void *own = NULL;
	int rc = c->old->create(&own, keys, values, n, err, errlen);

	if (rc != 0)
		return rc;
	c->st = own;
	*st = c;
	return 0;
}

void plugin_compat_free(struct plugin_compat **c)
{
	if (!c)
		return;
	free(*c);
	*c = NULL;
}
