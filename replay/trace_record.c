/* trace_record.c - the records of the trace format (traces/FORMAT.md):
 * op kinds, the checks every record must pass, header provenance, model
 * copies, and the set of sequence ids. */
#include "trace_impl.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>

/* ------------------------------------------------------------------------ */
/* op kinds                                                                  */

static const char *const kind_names[TRACE_OP_KIND_COUNT] = {
	[TRACE_OP_GEMM] = "gemm",
	[TRACE_OP_ATTENTION] = "attention",
	[TRACE_OP_NONLINEAR] = "nonlinear",
	[TRACE_OP_NORM] = "norm",
	[TRACE_OP_ELEMENTWISE] = "elementwise",
	[TRACE_OP_EMBED] = "embed",
};

const char *trace_op_kind_name(enum trace_op_kind kind)
{
	if ((unsigned)kind >= TRACE_OP_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

int trace_op_kind_parse(const char *name)
{
	if (!name)
		return -1;
	for (int k = 0; k < TRACE_OP_KIND_COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* format 1.1 features                                                       */

static const struct {
	enum trace_feature bit;
	const char *name;
} feature_names[] = {
	{ TRACE_F_ACCEPT_RUNS, "accept_runs" },
	{ TRACE_F_NO_ENTROPY, "no_entropy" },
	{ TRACE_F_DRAFT_LOOKUP, "draft_lookup" },
};

const char *trace_feature_name(enum trace_feature f)
{
	for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0];
	     i++)
		if (feature_names[i].bit == f)
			return feature_names[i].name;
	return NULL;
}

uint32_t trace_feature_parse(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0];
	     i++)
		if (strlen(feature_names[i].name) == len &&
		    memcmp(feature_names[i].name, name, len) == 0)
			return feature_names[i].bit;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* checks                                                                    */

/* Fast check without early exits (the reader calls this for every
 * sequence): true if every rule below holds. Pointers and n_cont <= n are
 * checked by the caller. NaN fails every comparison, so "v >= 0 && v <=
 * FLT_MAX" also rejects NaN and infinities. */
static bool seq_ok_fast(const struct trace_header *h, const struct trace_seq *s)
{
	const uint32_t n = s->n, n_cont = s->n_cont;
	const float *ent = s->entropy, *top1 = s->top1, *acc = s->accept;
	const uint32_t *cp = s->cont_pos;
	const size_t n_ce = (size_t)n_cont * h->lookahead;
	uint32_t c = 0;
	bool bad = false;

	for (uint32_t i = 0; i < n_cont; i++)
		bad |= (cp[i] >= n) | (i > 0 && cp[i] <= cp[i - 1]);
	for (uint32_t p = 0; p < n; p++) {
		const float e = ent[p], t = top1[p], a = acc[p];
		const uint32_t next = c < n_cont ? cp[c] : UINT32_MAX;
		const bool has = next == p;

		bad |= !(e >= 0.0f && e <= FLT_MAX);
		bad |= !(t >= 0.0f && t <= 1.0f);
		bad |= !(a >= 0.0f && a <= 1.0f);
		bad |= !h->sampled & (a != 0.0f) & (a != 1.0f);
		bad |= (a < 1.0f) != has;
		c += has;
	}
	bad |= c != n_cont;
	bad |= (uint64_t)s->prompt_len + n > h->target.seq_len;
	bad |= (uint64_t)n_ce * 4 > TRACE_MAX_BIN;
	for (size_t i = 0; i < n_ce; i++) {
		const float e = s->cont_entropy[i];

		bad |= !(e >= 0.0f && e <= FLT_MAX);
	}
	return !bad;
}

/* The checks of a sequence of a trace without continuation rows (a 1.1
 * trace with no_entropy or accept_runs): what it has instead of them. */
static int seq_check_nocont(const struct trace_header *h,
                            const struct trace_seq *s, char *err, size_t errlen)
{
	const int ent = trace_header_has_entropy(h);
	const int runs = (h->features & TRACE_F_ACCEPT_RUNS) != 0;
	char num[UTIL_NUM_LEN];

	if (s->n_cont > 0) {
		util_set_err(
		        err, errlen,
		        "field 'cont_pos' (sequence %" PRIu32 "): "
		        "expected no continuations in a trace with feature %s, "
		        "got %" PRIu32,
		        s->id, runs ? "accept_runs" : "no_entropy", s->n_cont);
		return -EINVAL;
	}
	if (ent && (!s->entropy || !s->top1)) {
		util_set_err(err, errlen,
		             "field '%s' (sequence %" PRIu32 "): "
		             "expected an array of %" PRIu32
		             " floats, got NULL",
		             !s->entropy ? "entropy" : "top1", s->id, s->n);
		return -EINVAL;
	}
	if (runs ? !s->accept_run : !s->accept) {
		util_set_err(err, errlen,
		             "field '%s' (sequence %" PRIu32 "): "
		             "expected an array of %" PRIu32 " %s, got NULL",
		             runs ? "accept_run" : "accept", s->id, s->n,
		             runs ? "uint32" : "floats");
		return -EINVAL;
	}
	for (uint32_t p = 0; p < s->n; p++) {
		if (ent) {
			const float e = s->entropy[p], t = s->top1[p];

			if (!isfinite(e) || e < 0.0f) {
				util_set_err(err, errlen,
				             "field 'entropy[%" PRIu32 "]' "
				             "(sequence %" PRIu32
				             "): expected a finite "
				             "value >= 0 nats, got %s",
				             p, s->id, util_fmt_float(num, e));
				return -EINVAL;
			}
			if (!isfinite(t) || t < 0.0f || t > 1.0f) {
				util_set_err(err, errlen,
				             "field 'top1[%" PRIu32 "]' "
				             "(sequence %" PRIu32
				             "): expected a probability "
				             "in [0, 1], got %s",
				             p, s->id, util_fmt_float(num, t));
				return -EINVAL;
			}
		}
		if (runs) {
			if (s->accept_run[p] > h->run_max) {
				util_set_err(err, errlen,
				             "field 'accept_run[%" PRIu32
				             "]' (sequence %" PRIu32
				             "): expected at most "
				             "accept_run_max = %" PRIu32
				             ", got %" PRIu32,
				             p, s->id, h->run_max,
				             s->accept_run[p]);
				return -EINVAL;
			}
			continue;
		}
		const float a = s->accept[p];
		if (!isfinite(a) || a < 0.0f || a > 1.0f) {
			util_set_err(err, errlen,
			             "field 'accept[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected a probability in [0, 1], "
			             "got %s",
			             p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (!h->sampled && a != 0.0f && a != 1.0f) {
			util_set_err(err, errlen,
			             "field 'accept[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected 0 or 1 in a greedy trace, "
			             "got %s",
			             p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
	}
	return 0;
}

int trace_seq_check(const struct trace_header *h, const struct trace_seq *s,
                    char *err, size_t errlen)
{
	uint32_t K, c = 0;

	if (!h || !s) {
		util_set_err(err, errlen, "trace_seq_check: NULL argument");
		return -EINVAL;
	}
	if (!trace_header_entropy_full(h)) {
		if (s->n < 1) {
			util_set_err(err, errlen,
			             "field 'n' (sequence %" PRIu32 "): "
			             "expected >= 1 generated tokens, got 0",
			             s->id);
			return -EINVAL;
		}
		if ((uint64_t)s->prompt_len + s->n > h->target.seq_len) {
			util_set_err(err, errlen,
			             "field 'prompt_len' (sequence %" PRIu32
			             "): expected prompt_len + n = %" PRIu32
			             " + %" PRIu32 " = %" PRIu64
			             " within the target model's "
			             "context (seq_len %" PRIu32 ")",
			             s->id, s->prompt_len, s->n,
			             (uint64_t)s->prompt_len + s->n,
			             h->target.seq_len);
			return -EINVAL;
		}
		return seq_check_nocont(h, s, err, errlen);
	}
	K = h->lookahead;
	if (K < 1) {
		util_set_err(err, errlen,
		             "field 'lookahead': expected >= 1, got 0");
		return -EINVAL;
	}
	if (s->n < 1) {
		util_set_err(err, errlen,
		             "field 'n' (sequence %" PRIu32 "): "
		             "expected >= 1 generated tokens, got 0",
		             s->id);
		return -EINVAL;
	}
	if (!s->entropy || !s->top1 || !s->accept) {
		util_set_err(err, errlen,
		             "field '%s' (sequence %" PRIu32 "): "
		             "expected an array of %" PRIu32
		             " floats, got NULL",
		             !s->entropy ? "entropy"
		             : !s->top1  ? "top1"
		                         : "accept",
		             s->id, s->n);
		return -EINVAL;
	}
	if (s->n_cont > s->n) {
		util_set_err(err, errlen,
		             "field 'cont_pos' (sequence %" PRIu32 "): "
		             "expected at most n = %" PRIu32
		             " positions, got %" PRIu32,
		             s->id, s->n, s->n_cont);
		return -EINVAL;
	}
	if ((uint64_t)s->n_cont * K * 4 > TRACE_MAX_BIN) {
		util_set_err(err, errlen,
		             "field 'cont_entropy' (sequence %" PRIu32
		             "): expected at most %u bytes (a msgpack bin), "
		             "got n_cont "
		             "%" PRIu32 " x lookahead %" PRIu32 " float32",
		             s->id, TRACE_MAX_BIN, s->n_cont, K);
		return -EINVAL;
	}
	if ((uint64_t)s->prompt_len + s->n > h->target.seq_len) {
		util_set_err(err, errlen,
		             "field 'prompt_len' (sequence %" PRIu32
		             "): expected prompt_len + n = %" PRIu32
		             " + %" PRIu32 " = %" PRIu64
		             " within the target model's context "
		             "(seq_len %" PRIu32 ")",
		             s->id, s->prompt_len, s->n,
		             (uint64_t)s->prompt_len + s->n, h->target.seq_len);
		return -EINVAL;
	}
	if (s->n_cont > 0 && (!s->cont_pos || !s->cont_entropy)) {
		util_set_err(err, errlen,
		             "field '%s' (sequence %" PRIu32 "): "
		             "expected an array for %" PRIu32
		             " continuations, got NULL",
		             !s->cont_pos ? "cont_pos" : "cont_entropy", s->id,
		             s->n_cont);
		return -EINVAL;
	}
	if (seq_ok_fast(h, s))
		return 0;
	/* something is wrong: find the first violation and describe it */
	for (uint32_t i = 0; i < s->n_cont; i++) {
		if (s->cont_pos[i] >= s->n) {
			util_set_err(err, errlen,
			             "field 'cont_pos[%" PRIu32 "]' "
			             "(sequence %" PRIu32
			             "): expected a position < n = "
			             "%" PRIu32 ", got %" PRIu32,
			             i, s->id, s->n, s->cont_pos[i]);
			return -EINVAL;
		}
		if (i > 0 && s->cont_pos[i] <= s->cont_pos[i - 1]) {
			util_set_err(err, errlen,
			             "field 'cont_pos[%" PRIu32 "]' "
			             "(sequence %" PRIu32
			             "): expected strictly ascending "
			             "positions (> %" PRIu32 "), got %" PRIu32,
			             i, s->id, s->cont_pos[i - 1],
			             s->cont_pos[i]);
			return -EINVAL;
		}
	}
	for (uint32_t p = 0; p < s->n; p++) {
		const float e = s->entropy[p], t = s->top1[p], a = s->accept[p];
		const bool has_cont = c < s->n_cont && s->cont_pos[c] == p;
		char num[UTIL_NUM_LEN];

		if (!isfinite(e) || e < 0.0f) {
			util_set_err(err, errlen,
			             "field 'entropy[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected a finite value >= 0 nats, "
			             "got %s",
			             p, s->id, util_fmt_float(num, e));
			return -EINVAL;
		}
		if (!isfinite(t) || t < 0.0f || t > 1.0f) {
			util_set_err(err, errlen,
			             "field 'top1[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected a probability in [0, 1], "
			             "got %s",
			             p, s->id, util_fmt_float(num, t));
			return -EINVAL;
		}
		if (!isfinite(a) || a < 0.0f || a > 1.0f) {
			util_set_err(err, errlen,
			             "field 'accept[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected a probability in [0, 1], "
			             "got %s",
			             p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (!h->sampled && a != 0.0f && a != 1.0f) {
			util_set_err(err, errlen,
			             "field 'accept[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected 0 or 1 in a greedy trace, "
			             "got %s",
			             p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (a < 1.0f && !has_cont) {
			util_set_err(err, errlen,
			             "field 'cont_pos' (sequence %" PRIu32
			             "): expected a continuation for position "
			             "%" PRIu32 " (accept %s < 1), got none",
			             s->id, p, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (a >= 1.0f && has_cont) {
			util_set_err(err, errlen,
			             "field 'cont_pos[%" PRIu32 "]' (sequence "
			             "%" PRIu32
			             "): expected only positions with accept "
			             "< 1, got position %" PRIu32
			             " with accept 1",
			             c, s->id, p);
			return -EINVAL;
		}
		if (has_cont)
			c++;
	}
	for (size_t i = 0; i < (size_t)s->n_cont * K; i++) {
		const float e = s->cont_entropy[i];
		char num[UTIL_NUM_LEN];

		if (!isfinite(e) || e < 0.0f) {
			util_set_err(err, errlen,
			             "field 'cont_entropy[%zu][%zu]' "
			             "(sequence %" PRIu32
			             "): expected a finite value "
			             ">= 0 nats, got %s",
			             i / K, i % K, s->id,
			             util_fmt_float(num, e));
			return -EINVAL;
		}
	}
	return 0;
}

int trace_model_check(const struct trace_model *m, const char *which, char *err,
                      size_t errlen)
{
	const char *w = which ? which : "model";
	const struct {
		const char *name;
		uint32_t v, max;
	} dims[] = {
		{ "dim", m->dim, TRACE_MAX_DIM },
		{ "hidden_dim", m->hidden_dim, TRACE_MAX_HIDDEN_DIM },
		{ "n_layers", m->n_layers, TRACE_MAX_LAYERS },
		{ "n_heads", m->n_heads, TRACE_MAX_HEADS },
		{ "n_kv_heads", m->n_kv_heads, m->n_heads },
		{ "vocab_size", m->vocab_size, TRACE_MAX_VOCAB },
		{ "seq_len", m->seq_len, TRACE_MAX_SEQ_LEN },
	};

	if (m->name[0] == '\0') {
		util_set_err(err, errlen,
		             "field 'models.%s.name': expected a "
		             "non-empty string, got \"\"",
		             w);
		return -EINVAL;
	}
	if (memchr(m->name, '\0', sizeof m->name) == NULL) {
		util_set_err(err, errlen,
		             "field 'models.%s.name': expected at "
		             "most %d bytes",
		             w, TRACE_NAME_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		if (dims[i].v == 0) {
			util_set_err(err, errlen,
			             "field 'models.%s.%s': expected a "
			             "value > 0, got 0",
			             w, dims[i].name);
			return -EINVAL;
		}
		if (dims[i].v > dims[i].max) {
			util_set_err(err, errlen,
			             "field 'models.%s.%s': expected a "
			             "value in [1, %" PRIu32
			             "]%s, got %" PRIu32,
			             w, dims[i].name, dims[i].max,
			             dims[i].max == m->n_heads && i == 4
			                     ? " (n_heads)"
			                     : "",
			             dims[i].v);
			return -EINVAL;
		}
	}
	if (m->weight_bits < 1 || m->weight_bits > 64) {
		util_set_err(err, errlen,
		             "field 'models.%s.weight_bits': expected a "
		             "value in [1, 64], got %" PRIu32,
		             w, m->weight_bits);
		return -EINVAL;
	}
	if (m->weight_bytes > TRACE_MAX_WEIGHT_BYTES) {
		util_set_err(err, errlen,
		             "field 'models.%s.weight_bytes': expected "
		             "at most %llu, got %" PRIu64,
		             w, (unsigned long long)TRACE_MAX_WEIGHT_BYTES,
		             m->weight_bytes);
		return -EINVAL;
	}
	if (m->n_ops < 1 || !m->ops) {
		util_set_err(err, errlen,
		             "field 'models.%s.ops': expected at least "
		             "one op, got none",
		             w);
		return -EINVAL;
	}
	if (m->n_ops > TRACE_MAX_OPS) {
		util_set_err(err, errlen,
		             "field 'models.%s.ops': expected at most "
		             "%u ops, got %" PRIu32,
		             w, TRACE_MAX_OPS, m->n_ops);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];
		const char *bad = NULL;
		const struct {
			const char *name;
			uint32_t v, max;
		} od[] = {
			{ "k", op->k, TRACE_MAX_OP_DIM },
			{ "n", op->n, TRACE_MAX_OP_DIM },
			{ "heads", op->heads, TRACE_MAX_HEADS },
			{ "kv_heads", op->kv_heads, TRACE_MAX_HEADS },
			{ "head_dim", op->head_dim, TRACE_MAX_HEAD_DIM },
		};

		if ((unsigned)op->kind >= TRACE_OP_KIND_COUNT) {
			util_set_err(
			        err, errlen,
			        "field 'models.%s.ops[%" PRIu32
			        "].kind': expected one of gemm, attention, "
			        "nonlinear, norm, elementwise, embed, got kind "
			        "%d",
			        w, i, (int)op->kind);
			return -EINVAL;
		}
		if (memchr(op->name, '\0', sizeof op->name) == NULL) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops[%" PRIu32
			             "].name': expected at most %d bytes",
			             w, i, TRACE_NAME_MAX - 1);
			return -EINVAL;
		}
		switch (op->kind) {
		case TRACE_OP_GEMM:
		case TRACE_OP_EMBED:
			bad = op->k == 0 ? "k" : op->n == 0 ? "n" : NULL;
			break;
		case TRACE_OP_ATTENTION:
			bad = op->heads == 0      ? "heads"
			      : op->kv_heads == 0 ? "kv_heads"
			      : op->head_dim == 0 ? "head_dim"
			                          : NULL;
			break;
		default: bad = op->n == 0 ? "n" : NULL; break;
		}
		if (bad) {
			util_set_err(
			        err, errlen,
			        "field 'models.%s.ops[%" PRIu32 "].%s'"
			        ": expected a value > 0 for kind '%s', got 0",
			        w, i, bad, kind_names[op->kind]);
			return -EINVAL;
		}
		for (size_t j = 0; j < sizeof od / sizeof od[0]; j++) {
			if (od[j].v > od[j].max) {
				util_set_err(err, errlen,
				             "field 'models.%s.ops[%" PRIu32
				             "].%s': expected at most %" PRIu32
				             ", got %" PRIu32,
				             w, i, od[j].name, od[j].max,
				             od[j].v);
				return -EINVAL;
			}
		}
		if (op->kind == TRACE_OP_ATTENTION &&
		    op->heads % op->kv_heads != 0) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops[%" PRIu32
			             "].kv_heads': expected a divisor of heads "
			             "= %" PRIu32 ", got %" PRIu32,
			             w, i, op->heads, op->kv_heads);
			return -EINVAL;
		}
		if (op->repeat < 1) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops[%" PRIu32
			             "].repeat': expected >= 1, got 0",
			             w, i);
			return -EINVAL;
		}
		if (op->repeat > TRACE_MAX_REPEAT) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops[%" PRIu32
			             "].repeat': expected a value in [1, %u], "
			             "got %" PRIu32,
			             w, i, TRACE_MAX_REPEAT, op->repeat);
			return -EINVAL;
		}
	}
	return 0;
}

static int cmp_prov_key(const void *a, const void *b)
{
	const struct trace_kv *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

/* The first provenance key given twice, or NULL (-ENOMEM: *dup unset). */
static int prov_find_dup(const struct trace_header *h, const char **dup)
{
	const struct trace_kv **v;

	*dup = NULL;
	if (h->n_prov < 2)
		return 0;
	if (h->n_prov <= 16) {
		for (size_t i = 1; i < h->n_prov; i++)
			for (size_t j = 0; j < i; j++)
				if (strcmp(h->prov[i].key, h->prov[j].key) ==
				    0) {
					*dup = h->prov[i].key;
					return 0;
				}
		return 0;
	}
	v = malloc(h->n_prov * sizeof *v);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_prov; i++)
		v[i] = &h->prov[i];
	qsort(v, h->n_prov, sizeof *v, cmp_prov_key);
	for (size_t i = 1; i < h->n_prov && !*dup; i++)
		if (strcmp(v[i]->key, v[i - 1]->key) == 0)
			*dup = v[i]->key;
	free(v);
	return 0;
}

int trace_header_check(const struct trace_header *h, char *err, size_t errlen)
{
	char num[UTIL_NUM_LEN];
	const char *dup;
	int ret;

	if (h->features & ~TRACE_F_ALL) {
		util_set_err(err, errlen,
		             "field 'features': expected a set of "
		             "accept_runs, no_entropy, draft_lookup, got "
		             "unknown bits "
		             "0x%" PRIx32,
		             h->features & ~TRACE_F_ALL);
		return -EINVAL;
	}
	if (!trace_header_entropy_full(h)) {
		if (h->lookahead != 0) {
			util_set_err(err, errlen,
			             "field 'lookahead': expected none "
			             "in a trace without continuation rows "
			             "(feature %s), "
			             "got %" PRIu32,
			             h->features & TRACE_F_ACCEPT_RUNS
			                     ? "accept_runs"
			                     : "no_entropy",
			             h->lookahead);
			return -EINVAL;
		}
	} else if (h->lookahead < 1) {
		util_set_err(err, errlen,
		             "field 'lookahead': expected >= 1, got 0");
		return -EINVAL;
	} else if (h->lookahead > TRACE_MAX_LOOKAHEAD) {
		util_set_err(err, errlen,
		             "field 'lookahead': expected a value in "
		             "[1, %u], got %" PRIu32,
		             TRACE_MAX_LOOKAHEAD, h->lookahead);
		return -EINVAL;
	}
	if (h->features & TRACE_F_ACCEPT_RUNS) {
		if (h->run_max < 1 || h->run_max > TRACE_MAX_RUN) {
			util_set_err(err, errlen,
			             "field 'accept_run_max': expected a "
			             "value in [1, %u], got %" PRIu32,
			             TRACE_MAX_RUN, h->run_max);
			return -EINVAL;
		}
		if (h->tree_tokens < h->run_max ||
		    h->tree_tokens > TRACE_MAX_TREE_TOKENS) {
			util_set_err(err, errlen,
			             "field 'tree_tokens': expected a "
			             "value in [accept_run_max = %" PRIu32
			             ", %u], got %" PRIu32,
			             h->run_max, TRACE_MAX_TREE_TOKENS,
			             h->tree_tokens);
			return -EINVAL;
		}
	} else if (h->run_max || h->tree_tokens) {
		util_set_err(err, errlen,
		             "field '%s': expected none without "
		             "feature accept_runs, got %" PRIu32,
		             h->run_max ? "accept_run_max" : "tree_tokens",
		             h->run_max ? h->run_max : h->tree_tokens);
		return -EINVAL;
	}
	if (memchr(h->draft_lookup, '\0', sizeof h->draft_lookup) == NULL) {
		util_set_err(err, errlen,
		             "field 'draft_lookup': expected at most "
		             "%d bytes",
		             TRACE_NAME_MAX - 1);
		return -EINVAL;
	}
	if ((h->features & TRACE_F_DRAFT_LOOKUP) && !h->draft_lookup[0]) {
		util_set_err(err, errlen,
		             "field 'draft_lookup': expected the "
		             "method's name (feature draft_lookup), got \"\"");
		return -EINVAL;
	}
	if (!(h->features & TRACE_F_DRAFT_LOOKUP) && h->draft_lookup[0]) {
		util_set_err(
		        err, errlen,
		        "field 'draft_lookup': expected none "
		        "without feature draft_lookup (the draft is a model)");
		return -EINVAL;
	}
	if (!isfinite(h->temperature) || h->temperature < 0.0) {
		util_set_err(err, errlen,
		             "field 'temperature': expected a finite "
		             "value >= 0, got %s",
		             util_fmt_double(num, h->temperature));
		return -EINVAL;
	}
	if (!isfinite(h->top_p) || h->top_p <= 0.0 || h->top_p > 1.0) {
		util_set_err(err, errlen,
		             "field 'top_p': expected a value in (0, 1], "
		             "got %s",
		             util_fmt_double(num, h->top_p));
		return -EINVAL;
	}
	if (h->n_prov > TRACE_MAX_PROV) {
		util_set_err(err, errlen,
		             "field 'provenance': expected at most %u "
		             "entries, got %zu",
		             TRACE_MAX_PROV, h->n_prov);
		return -EINVAL;
	}
	for (size_t i = 0; i < h->n_prov; i++) {
		if (!h->prov[i].key || !h->prov[i].value) {
			util_set_err(err, errlen,
			             "field 'provenance': expected string "
			             "pairs, got NULL at entry %zu",
			             i);
			return -EINVAL;
		}
	}
	if (prov_find_dup(h, &dup) < 0) {
		util_set_err(err, errlen,
		             "field 'provenance': out of memory "
		             "checking %zu keys",
		             h->n_prov);
		return -ENOMEM;
	}
	if (dup) {
		char e[200];

		util_set_err(err, errlen,
		             "field 'provenance.%s': duplicate key "
		             "(given twice)",
		             escape(dup, strlen(dup), e, sizeof e));
		return -EINVAL;
	}
	ret = h->features & TRACE_F_DRAFT_LOOKUP
	              ? 0
	              : trace_model_check(&h->draft, "draft", err, errlen);
	if (ret == 0)
		ret = trace_model_check(&h->target, "target", err, errlen);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* header helpers                                                            */

int trace_header_add_prov(struct trace_header *h, const char *key,
                          const char *value)
{
	struct trace_kv *np;
	char *k = NULL, *v = NULL;

	if (!h || !key || !value)
		return -EINVAL;
	v = dup_str(value);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_prov; i++) {
		if (strcmp(h->prov[i].key, key) == 0) { /* replace */
			free(h->prov[i].value);
			h->prov[i].value = v;
			return 0;
		}
	}
	k = dup_str(key);
	np = realloc(h->prov, (h->n_prov + 1) * sizeof *np);
	if (!k || !np) {
		if (np)
			h->prov = np;
		free(k);
		free(v);
		return -ENOMEM;
	}
	h->prov = np;
	h->prov[h->n_prov].key = k;
	h->prov[h->n_prov].value = v;
	h->n_prov++;
	return 0;
}

int trace_header_append_prov(struct trace_header *h, const char *key,
                             const char *value)
{
	struct trace_kv *np;
	char *k, *v;

	if (!h || !key || !value)
		return -EINVAL;
	k = dup_str(key);
	v = dup_str(value);
	np = k && v ? realloc(h->prov, (h->n_prov + 1) * sizeof *np) : NULL;
	if (!np) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	h->prov = np;
	h->prov[h->n_prov].key = k;
	h->prov[h->n_prov].value = v;
	h->n_prov++;
	return 0;
}

const char *trace_header_prov(const struct trace_header *h, const char *key)
{
	if (!h || !key)
		return NULL;
	for (size_t i = 0; i < h->n_prov; i++)
		if (strcmp(h->prov[i].key, key) == 0)
			return h->prov[i].value;
	return NULL;
}

void trace_header_clear(struct trace_header *h)
{
	if (!h)
		return;
	free(h->draft.ops);
	h->draft.ops = NULL;
	h->draft.n_ops = 0;
	free(h->target.ops);
	h->target.ops = NULL;
	h->target.n_ops = 0;
	for (size_t i = 0; i < h->n_prov; i++) {
		free(h->prov[i].key);
		free(h->prov[i].value);
	}
	free(h->prov);
	h->prov = NULL;
	h->n_prov = 0;
}

int trace_model_copy(struct trace_model *dst, const struct trace_model *src)
{
	struct trace_op *ops = NULL;

	if (!dst || !src)
		return -EINVAL;
	if (src->n_ops > 0) {
		if (!src->ops)
			return -EINVAL;
		ops = malloc(src->n_ops * sizeof *ops);
		if (!ops)
			return -ENOMEM;
		memcpy(ops, src->ops, src->n_ops * sizeof *ops);
	}
	*dst = *src;
	dst->ops = ops;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* reader                                                                    */

static size_t id_hash(uint32_t id, size_t cap)
{
	return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> 32) &
	       (cap - 1);
}

int trace_idset_add(struct trace_idset *s, uint32_t id, uint64_t where,
                    uint64_t *first)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		const size_t nc = s->cap ? 2 * s->cap : 1024;
		struct trace_idslot *ns = calloc(nc, sizeof *ns);

		if (!ns)
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->slot[j].where_plus1)
				continue;
			for (i = id_hash(s->slot[j].id, nc); ns[i].where_plus1;
			     i = (i + 1) & (nc - 1))
				;
			ns[i] = s->slot[j];
		}
		free(s->slot);
		s->slot = ns;
		s->cap = nc;
	}
	for (i = id_hash(id, s->cap); s->slot[i].where_plus1;
	     i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i].id == id) {
			*first = s->slot[i].where_plus1 - 1;
			return 1;
		}
	}
	s->slot[i].id = id;
	s->slot[i].where_plus1 = where + 1;
	s->n++;
	return 0;
}

void trace_idset_clear(struct trace_idset *s)
{
	if (!s)
		return;
	free(s->slot);
	memset(s, 0, sizeof *s);
}
