/* policy_ahasd.c - AHASD: task-level asynchronous execution with
 * Entropy-History-Aware Drafting Control (EDC) and Time-Aware
 * Pre-Verification Control (TVC), each switchable for the ablation:
 *   edc=0        naive async (always draft ahead)
 *   edc=1 tvc=0  EDC: stop look-ahead when the PHT predicts a rejection
 *   edc=1 tvc=1  full AHASD: when EDC stops, pre-verify on the PIM if the
 *                NPU's predicted remaining time allows, else keep drafting
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ahasd_plugin.h"
#include "ahasd_plugin_params.h"
#include "edc.h"
#include "tvc.h"

/* Closed, unverified batches in closing order: a FIFO, because the host
 * verifies batches oldest first and always drops the newest ones. */
struct inflight {
	uint64_t batch_id;
	uint16_t index;
	uint8_t bin;
	uint8_t predicted; /* EDC's prediction after this batch */
};

struct ahasd {
	int use_edc, use_tvc;
	double h_max;
	unsigned pht_init, tvc_size;
	struct edc edc;
	struct tvc tvc;
	int tvc_ready;
	double f_draft, f_verify; /* clocks, taken from the host at init */
	struct inflight *fifo;    /* ring, capacity a power of two */
	uint32_t fifo_cap, fifo_head, fifo_n;
	int oom; /* the FIFO could not grow: EDC off */
	/* counters */
	double n_predictions, n_continue, n_stop, n_correct, n_scored;
	double n_insertions, n_tokens, n_keep_drafting, n_waits, n_rollbacks;
	double llr_sum; /* LLR at each prediction, for the mean */
};

static const struct ahasd_param ahasd_params[] = {
	{ "edc", "1", "1: entropy-history-aware drafting control on" },
	{ "tvc", "1", "1: time-aware pre-verification control on" },
	{ "h_max", "4.0", "entropy (nats) mapped to the top of the 8 bins" },
	{ "pht_init", "2", "initial value of the 2-bit PHT counters (0..3)" },
	{ "tvc_size", "4", "entries per TVC table (1..64)" },
	{ NULL, NULL, NULL },
};

static int ahasd_create(void **out, const struct ahasd_create_args *args,
                        char *err, size_t errlen)
{
	struct ahasd *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* every key of ahasd_params comes, with its default if not set */
	double edc = 0, tvc = 0, h_max = 0, pht_init = 0, tvc_size = 0;
	for (size_t i = 0; i < args->n; i++) {
		const char *k = args->keys[i], *v = args->values[i];
		int rc;
		if (!strcmp(k, "edc"))
			rc = ahasd_parse_double(k, v, 0, 1, &edc, err, errlen);
		else if (!strcmp(k, "tvc"))
			rc = ahasd_parse_double(k, v, 0, 1, &tvc, err, errlen);
		else if (!strcmp(k, "h_max"))
			rc = ahasd_parse_double(k, v, 1e-6, 1e3, &h_max, err,
			                        errlen);
		else if (!strcmp(k, "pht_init"))
			rc = ahasd_parse_double(k, v, 0, 3, &pht_init, err,
			                        errlen);
		else if (!strcmp(k, "tvc_size"))
			rc = ahasd_parse_double(k, v, 1, TVC_MAX_ENTRIES,
			                        &tvc_size, err, errlen);
		else {
			snprintf(err, errlen, "unknown parameter '%s'", k);
			rc = -1;
		}
		if (rc) {
			free(a);
			return rc;
		}
	}
	if (h_max <= 0 || tvc_size < 1) {
		/* only if called without the host's defaults */
		snprintf(err, errlen, "h_max and tvc_size need a value");
		free(a);
		return -1;
	}
	a->use_edc = edc != 0;
	a->use_tvc = tvc != 0;
	a->h_max = h_max;
	a->pht_init = (unsigned)pht_init;
	a->tvc_size = (unsigned)tvc_size;
	edc_init(&a->edc, a->h_max, a->pht_init);
	*out = a;
	return 0;
}

static void ahasd_destroy(void *st)
{
	struct ahasd *a = st;
	if (a)
		free(a->fifo);
	free(a);
}

static struct inflight *fifo_at(const struct ahasd *a, uint32_t i)
{
	return &a->fifo[(a->fifo_head + i) & (a->fifo_cap - 1)];
}

static int fifo_push(struct ahasd *a, struct inflight x)
{
	if (a->fifo_n == a->fifo_cap) {
		uint32_t cap = a->fifo_cap ? 2 * a->fifo_cap : 64;
		struct inflight *f = malloc(cap * sizeof *f);
		if (!f)
			return -1;
		for (uint32_t i = 0; i < a->fifo_n; i++)
			f[i] = *fifo_at(a, i);
		free(a->fifo);
		a->fifo = f;
		a->fifo_cap = cap;
		a->fifo_head = 0;
	}
	*fifo_at(a, a->fifo_n++) = x;
	return 0;
}

/* The entry of batch id, dropping older ones (batches the host discarded
 * without a verification reaching them); NULL if it was never pushed. */
static struct inflight *fifo_take(struct ahasd *a, uint64_t id)
{
	while (a->fifo_n && fifo_at(a, 0)->batch_id < id) {
		a->fifo_head = (a->fifo_head + 1) & (a->fifo_cap - 1);
		a->fifo_n--;
	}
	if (!a->fifo_n || fifo_at(a, 0)->batch_id != id)
		return NULL;
	struct inflight *x = fifo_at(a, 0);
	a->fifo_head = (a->fifo_head + 1) & (a->fifo_cap - 1);
	a->fifo_n--;
	return x;
}

/* The host dropped the n newest closed batches. */
static void fifo_drop_newest(struct ahasd *a, uint32_t n)
{
	a->fifo_n = n < a->fifo_n ? a->fifo_n - n : 0;
}

static uint32_t ahasd_mode(void *st)
{
	(void)st;
	return AHASD_EXEC_TASK_ASYNC;
}

/* Predictor state persists across sequences (hardware keeps its tables);
 * only the in-flight bookkeeping and LLR are per sequence. */
static void ahasd_begin_sequence(void *st, const struct ahasd_seq_info *s)
{
	struct ahasd *a = st;
	(void)s;
	a->fifo_n = 0;
	a->edc.llr = 0;
	a->edc.leht = a->edc.lceht;
}

static void init_tvc(struct ahasd *a, const struct ahasd_host_view *v)
{
	/* profiled per-unit costs, in each table's own clock */
	tvc_init(&a->tvc, a->tvc_size,
	         v->prof_verify_s_per_kv * v->verify_freq_hz,
	         v->prof_draft_s * v->draft_freq_hz,
	         v->prof_preverify_s_per_token * v->draft_freq_hz);
	a->f_draft = v->draft_freq_hz;
	a->f_verify = v->verify_freq_hz;
	a->tvc_ready = 1;
}

static void ahasd_after_batch(void *st, const struct ahasd_host_view *v,
                              const struct ahasd_batch_info *b,
                              struct ahasd_decision *d)
{
	struct ahasd *a = st;
	unsigned bin = edc_bin(&a->edc, b->mean_entropy);
	edc_batch(&a->edc, bin);
	unsigned index = edc_index(&a->edc);
	int cont = edc_predict(&a->edc, index);

	if (fifo_push(a, (struct inflight){ b->batch_id, (uint16_t)index,
	                                    (uint8_t)bin, (uint8_t)cont }))
		a->oom = 1;
	d->next = AHASD_NEXT_DRAFT;
	d->count = 0;
	if (!a->use_edc || a->oom)
		return;
	a->n_predictions++;
	a->llr_sum += a->edc.llr;
	if (cont) {
		a->n_continue++;
		return;
	}
	a->n_stop++;
	if (!a->use_tvc) {
		d->next = AHASD_NEXT_WAIT;
		a->n_waits++;
		return;
	}
	if (!a->tvc_ready)
		init_tvc(a, v);
	if (!v->verify_busy || v->preverifiable == 0) {
		/* nothing is being verified, or every queued draft is already
		 * settled or on the NPU: no pre-verification to insert */
		d->next = AHASD_NEXT_WAIT;
		a->n_waits++;
		return;
	}
	double ratio = v->draft_freq_hz / v->verify_freq_hz;
	double now = (v->now_s - v->verify_start_s) * v->verify_freq_hz;
	double left = tvc_pim_left(&a->tvc, v->verify_kv_len, now, ratio);
	uint32_t m = tvc_preverify_len(&a->tvc, left);
	if (m < 1) {
		a->n_keep_drafting++; /* PAPER.md: length < 1 keeps drafting */
		return;
	}
	if (m > v->preverifiable)
		m = v->preverifiable;
	d->next = AHASD_NEXT_PREVERIFY;
	d->count = m;
	a->n_insertions++;
	a->n_tokens += m;
}

static void ahasd_on_verify(void *st, const struct ahasd_host_view *v,
                            const struct ahasd_verify_info *r)
{
	struct ahasd *a = st;
	/* one NVCT sample per verification pass, however many batches */
	if (a->tvc_ready && r->kv_len > 0 && r->pass_index == 0)
		tvc_record(&a->tvc.nvct, r->duration_s * a->f_verify,
		           r->kv_len);
	const struct inflight *slot = fifo_take(a, r->batch_id);
	if (!slot)
		return; /* not closed through after_batch */
	if (a->use_edc) {
		a->n_scored++;
		if ((slot->predicted != 0) == (r->full != 0))
			a->n_correct++;
	}
	if (r->corrected) {
		/* the rollback happened when pre-verification dropped the
		 * batches after this one; those since drafted are live */
		edc_verify_corrected(&a->edc, slot->index);
	} else {
		edc_verify(&a->edc, slot->index, slot->bin, r->full);
		if (!r->full)
			a->n_rollbacks++;
	}
	if (r->discarded_batches) {
		/* every batch after this one is gone (a rejection, or a bonus
		 * that differs from the look-ahead token) */
		a->fifo_n = 0;
		if (r->full || r->corrected) {
			/* not a rejection (edc_verify rolled that back) */
			edc_discard(&a->edc, r->discarded_batches);
			a->n_rollbacks++;
		}
	}
}

static void ahasd_on_draft_step(void *st, const struct ahasd_task_info *t)
{
	struct ahasd *a = st;
	if (a->tvc_ready)
		tvc_record(&a->tvc.pdct, t->duration_s * a->f_draft, t->tokens);
}

static void ahasd_on_preverify(void *st, const struct ahasd_task_info *t,
                               int rejected)
{
	struct ahasd *a = st;
	if (a->tvc_ready)
		tvc_record(&a->tvc.pvct, t->duration_s * a->f_draft, t->tokens);
	if (rejected) {
		fifo_drop_newest(a, t->discarded_batches);
		edc_discard(&a->edc, t->discarded_batches);
		a->n_rollbacks++;
	}
}

static int ahasd_counter(void *st, uint32_t i, const char **name, double *value)
{
	const struct ahasd *a = st;
	switch (i) {
	case 0:
		*name = "edc_predictions";
		*value = a->n_predictions;
		return 1;
	case 1:
		*name = "edc_continue";
		*value = a->n_continue;
		return 1;
	case 2:
		*name = "edc_stop";
		*value = a->n_stop;
		return 1;
	case 3:
		*name = "edc_accuracy";
		*value = a->n_scored > 0 ? a->n_correct / a->n_scored : 0;
		return 1;
	case 4:
		*name = "edc_rollbacks";
		*value = a->n_rollbacks;
		return 1;
	case 5:
		*name = "tvc_insertions";
		*value = a->n_insertions;
		return 1;
	case 6:
		*name = "tvc_tokens";
		*value = a->n_tokens;
		return 1;
	case 7:
		*name = "tvc_keep_drafting";
		*value = a->n_keep_drafting;
		return 1;
	case 8:
		*name = "waits";
		*value = a->n_waits;
		return 1;
	case 9:
		*name = "edc_mean_llr";
		*value = a->n_predictions > 0 ? a->llr_sum / a->n_predictions
		                              : 0;
		return 1;
	case 10:
		*name = "edc_off_out_of_memory";
		*value = a->oom;
		return 1;
	default: return 0;
	}
}

static const struct ahasd_policy_hooks ahasd_hooks = {
	.struct_size = sizeof(struct ahasd_policy_hooks),
	.exec_mode = ahasd_mode,
	.begin_sequence = ahasd_begin_sequence,
	.after_batch = ahasd_after_batch,
	.on_verify = ahasd_on_verify,
	.on_draft_step = ahasd_on_draft_step,
	.on_preverify = ahasd_on_preverify,
};

/* EDC bins batch entropies; TVC and the rest need none, so edc=0 runs on
 * a trace without entropies (the no-EDC rows of the ablation). */
static uint32_t ahasd_instance_needs(void *st)
{
	const struct ahasd *a = st;
	return a->use_edc ? AHASD_NEEDS_ENTROPY : 0;
}

AHASD_PLUGIN_EXPORT const struct ahasd_plugin ahasd_plugin = {
	.abi_version = AHASD_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct ahasd_plugin),
	.kind = AHASD_PLUGIN_POLICY,
	.name = "ahasd",
	.version = "1.0",
	.description =
	        "AHASD: task-level async with EDC look-ahead control and "
	        "TVC pre-verification (edc=, tvc= for the ablation)",
	.params = ahasd_params,
	.create = ahasd_create,
	.destroy = ahasd_destroy,
	.counter = ahasd_counter,
	.policy = &ahasd_hooks,
	.needs = AHASD_NEEDS_ENTROPY, /* with edc=1, the default */
	.instance_needs = ahasd_instance_needs,
};
