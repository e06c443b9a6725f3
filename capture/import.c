/* import.c - JSON-lines trace (capture/IMPORT.md; version "1.1", the
 * acceptance-length logs of capture/IMPORT-RUNS.md) -> msgpack trace
 * (format 1.0, or 1.1 when the log uses a 1.1 feature).
 * Strict: unknown fields, wrong types, out-of-range values and mismatched
 * array lengths are errors naming the line and the field. */
#include "capture.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "json.h"
#include "sha256.h"
#include "trace.h"
#include "util.h"

struct ictx {
	const char *path;
	size_t line;
	char *err;
	size_t errlen;
};

static int ierr(const struct ictx *c, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int ierr(const struct ictx *c, const char *field, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->errlen, "%s:%zu: field '%s': ", c->path,
	                 c->line, field);

	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* "IN:LINE: out of memory reading field 'F'" (never a bare "out of
 * memory"). */
static int ienomem(const struct ictx *c, const char *field)
{
	snprintf(c->err, c->errlen, "%s:%zu: out of memory reading field '%s'",
	         c->path, c->line, field);
	return -ENOMEM;
}

/* Prefix a library message (trace_*_check) with "IN:LINE: ". */
static int iprefix(const struct ictx *c, int ret)
{
	char tmp[1024];

	snprintf(tmp, sizeof tmp, "%s", c->err);
	snprintf(c->err, c->errlen, "%s:%zu: %s", c->path, c->line, tmp);
	return ret;
}

static void join(char *out, size_t n, const char *pre, const char *key)
{
	snprintf(out, n, "%s%s%s", pre, *pre ? "." : "", key);
}

/* every member key must be in allowed (NULL-terminated) */
static int check_keys(const struct ictx *c, const struct json_value *o,
                      const char *pre, const char *const *allowed)
{
	for (size_t i = 0; i < o->len; i++) {
		const char *k = o->members[i].key;
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = 1;
		if (!ok) {
			char f[160];
			join(f, sizeof f, pre, k);
			return ierr(c, f,
			            "unknown field (see capture/IMPORT.md)");
		}
	}
	return 0;
}

static int get_u64(const struct ictx *c, const struct json_value *o,
                   const char *pre, const char *key, int required, uint64_t def,
                   uint64_t max, uint64_t *out)
{
	const struct json_value *v = json_get(o, key);
	char f[160];

	join(f, sizeof f, pre, key);
	if (!v) {
		if (required)
			return ierr(c, f, "missing (expected an integer)");
		*out = def;
		return 0;
	}
	if (v->type != JSON_NUMBER || !v->is_uint)
		return ierr(c, f, "expected a non-negative integer, got a %s",
		            json_type_name(v->type));
	if (v->u64 > max)
		return ierr(c, f, "expected at most %" PRIu64 ", got %" PRIu64,
		            max, v->u64);
	*out = v->u64;
	return 0;
}

static int get_u32(const struct ictx *c, const struct json_value *o,
                   const char *pre, const char *key, int required, uint32_t def,
                   uint32_t *out)
{
	uint64_t v;
	int ret = get_u64(c, o, pre, key, required, def, UINT32_MAX, &v);

	if (ret == 0)
		*out = (uint32_t)v;
	return ret;
}

static int get_num(const struct ictx *c, const struct json_value *o,
                   const char *pre, const char *key, int required, double def,
                   double lo, double hi, double *out)
{
	const struct json_value *v = json_get(o, key);
	char f[160];

	join(f, sizeof f, pre, key);
	if (!v) {
		if (required)
			return ierr(c, f, "missing (expected a number)");
		*out = def;
		return 0;
	}
	if (v->type != JSON_NUMBER)
		return ierr(c, f, "expected a number, got a %s",
		            json_type_name(v->type));
	if (v->num < lo || v->num > hi) {
		char num[UTIL_NUM_LEN];

		return ierr(c, f, "expected a value in [%g, %g], got %s", lo,
		            hi, util_fmt_double(num, v->num));
	}
	*out = v->num;
	return 0;
}

static int get_bool(const struct ictx *c, const struct json_value *o,
                    const char *pre, const char *key, int required, int def,
                    int *out)
{
	const struct json_value *v = json_get(o, key);
	char f[160];

	join(f, sizeof f, pre, key);
	if (!v) {
		if (required)
			return ierr(c, f, "missing (expected true or false)");
		*out = def;
		return 0;
	}
	if (v->type != JSON_BOOL)
		return ierr(c, f, "expected true or false, got a %s",
		            json_type_name(v->type));
	*out = v->boolean;
	return 0;
}

static int get_name(const struct ictx *c, const struct json_value *o,
                    const char *pre, const char *key, char *out, size_t n)
{
	const struct json_value *v = json_get(o, key);
	char f[160];

	join(f, sizeof f, pre, key);
	if (!v)
		return ierr(c, f, "missing (expected a string)");
	if (v->type != JSON_STRING)
		return ierr(c, f, "expected a string, got a %s",
		            json_type_name(v->type));
	if (v->len == 0 || v->len >= n || strlen(v->str) != v->len)
		return ierr(c, f,
		            "expected 1..%zu characters without NUL, got %zu",
		            n - 1, v->len);
	memcpy(out, v->str, v->len + 1);
	return 0;
}

static int parse_model(const struct ictx *c, const struct json_value *o,
                       const char *which, struct trace_model *m)
{
	static const char *const keys[] = {
		"name",        "dim",          "hidden_dim", "n_layers",
		"n_heads",     "n_kv_heads",   "vocab_size", "seq_len",
		"weight_bits", "weight_bytes", "ops",        NULL,
	};
	static const char *const op_keys[] = {
		"name",     "kind",     "k",      "n",  "heads",
		"kv_heads", "head_dim", "repeat", NULL,
	};
	char pre[64];
	const struct json_value *ops;
	uint64_t wb;
	int ret;

	snprintf(pre, sizeof pre, "models.%s", which);
	if (!o)
		return ierr(c, pre, "missing (expected a model object)");
	if (o->type != JSON_OBJECT)
		return ierr(c, pre, "expected an object, got a %s",
		            json_type_name(o->type));
	if ((ret = check_keys(c, o, pre, keys)) ||
	    (ret = get_name(c, o, pre, "name", m->name, sizeof m->name)) ||
	    (ret = get_u32(c, o, pre, "dim", 1, 0, &m->dim)) ||
	    (ret = get_u32(c, o, pre, "hidden_dim", 1, 0, &m->hidden_dim)) ||
	    (ret = get_u32(c, o, pre, "n_layers", 1, 0, &m->n_layers)) ||
	    (ret = get_u32(c, o, pre, "n_heads", 1, 0, &m->n_heads)) ||
	    (ret = get_u32(c, o, pre, "n_kv_heads", 1, 0, &m->n_kv_heads)) ||
	    (ret = get_u32(c, o, pre, "vocab_size", 1, 0, &m->vocab_size)) ||
	    (ret = get_u32(c, o, pre, "seq_len", 1, 0, &m->seq_len)) ||
	    (ret = get_u32(c, o, pre, "weight_bits", 1, 0, &m->weight_bits)) ||
	    (ret = get_u64(c, o, pre, "weight_bytes", 0, 0, UINT64_MAX, &wb)))
		return ret;
	ops = json_get(o, "ops");
	if (!ops)
		return ierr(c, pre,
		            "field 'ops' missing (an array of ops, or "
		            "\"llama\")");
	if (ops->type == JSON_STRING && strcmp(ops->str, "llama") == 0) {
		/* standard llama decoder ops from the dims */
		ret = trace_model_llama_ops(m);
		if (ret)
			return ierr(c, pre,
			            "cannot derive llama ops from these dims "
			            "(dim divisible by n_heads, n_heads by "
			            "n_kv_heads)");
	} else if (ops->type == JSON_ARRAY) {
		if (ops->len == 0 || ops->len > 4096)
			return ierr(c, pre,
			            "'ops': expected 1..4096 ops, got %zu",
			            ops->len);
		m->ops = calloc(ops->len, sizeof *m->ops);
		if (!m->ops)
			return ienomem(c, "ops");
		m->n_ops = (uint32_t)ops->len;
		for (size_t i = 0; i < ops->len; i++) {
			const struct json_value *op = &ops->items[i];
			struct trace_op *t = &m->ops[i];
			char opre[96], kind[32];
			int k;

			snprintf(opre, sizeof opre, "%s.ops[%zu]", pre, i);
			if (op->type != JSON_OBJECT)
				return ierr(c, opre,
				            "expected an op object, got a %s",
				            json_type_name(op->type));
			if ((ret = check_keys(c, op, opre, op_keys)) ||
			    (ret = get_name(c, op, opre, "name", t->name,
			                    sizeof t->name)) ||
			    (ret = get_name(c, op, opre, "kind", kind,
			                    sizeof kind)) ||
			    (ret = get_u32(c, op, opre, "k", 0, 0, &t->k)) ||
			    (ret = get_u32(c, op, opre, "n", 0, 0, &t->n)) ||
			    (ret = get_u32(c, op, opre, "heads", 0, 0,
			                   &t->heads)) ||
			    (ret = get_u32(c, op, opre, "kv_heads", 0, 0,
			                   &t->kv_heads)) ||
			    (ret = get_u32(c, op, opre, "head_dim", 0, 0,
			                   &t->head_dim)) ||
			    (ret = get_u32(c, op, opre, "repeat", 0, 1,
			                   &t->repeat)))
				return ret;
			k = trace_op_kind_parse(kind);
			if (k < 0) {
				char f[128];
				snprintf(f, sizeof f, "%s.kind", opre);
				return ierr(c, f,
				            "expected one of gemm, attention, "
				            "nonlinear, norm, elementwise, "
				            "embed, got \"%s\"",
				            kind);
			}
			t->kind = (enum trace_op_kind)k;
		}
	} else {
		char f[96];
		snprintf(f, sizeof f, "%s.ops", pre);
		return ierr(c, f,
		            "expected an array of op objects or \"llama\", got "
		            "a %s",
		            json_type_name(ops->type));
	}
	if (json_get(o, "weight_bytes")) {
		m->weight_bytes = wb;
	} else if (ops->type == JSON_ARRAY) {
		/* weights read by gemm/embed ops at weight_bits */
		uint64_t w = 0;
		for (uint32_t i = 0; i < m->n_ops; i++)
			if (m->ops[i].kind == TRACE_OP_GEMM ||
			    m->ops[i].kind == TRACE_OP_EMBED)
				w += (uint64_t)m->ops[i].k * m->ops[i].n *
				     m->ops[i].repeat;
		m->weight_bytes = (w * m->weight_bits + 7) / 8;
	}
	ret = trace_model_check(m, which, c->err, c->errlen);
	return ret ? iprefix(c, ret) : 0;
}

/* The header fields of version "1.1" (capture/IMPORT-RUNS.md): which
 * 1.1 features the log uses, and their parameters. */
static int parse_header11(const struct ictx *c, const struct json_value *o,
                          struct trace_header *h)
{
	const struct json_value *lk = json_get(o, "draft_lookup");
	int ent = 0, ret;

	if ((ret = get_bool(c, o, "", "entropy", 0, 0, &ent)))
		return ret;
	if (lk) {
		if ((ret = get_name(c, o, "", "draft_lookup", h->draft_lookup,
		                    sizeof h->draft_lookup)))
			return ret;
		h->features |= TRACE_F_DRAFT_LOOKUP;
	}
	if (!ent)
		h->features |= TRACE_F_NO_ENTROPY;
	if (json_get(o, "accept_run_max")) {
		uint64_t t;

		h->features |= TRACE_F_ACCEPT_RUNS;
		if ((ret = get_u32(c, o, "", "accept_run_max", 1, 0,
		                   &h->run_max)))
			return ret;
		if (h->run_max < 1 || h->run_max > TRACE_MAX_RUN)
			return ierr(c, "accept_run_max",
			            "expected a value in [1, "
			            "%u], got %" PRIu32,
			            TRACE_MAX_RUN, h->run_max);
		/* the format's default (traces/FORMAT.md): a lookup proposes a
		 * chain, a model's runs default to EAGLE-2's 10 nodes a level */
		if ((ret = get_u64(c, o, "", "tree_tokens", 0,
		                   lk ? h->run_max : (uint64_t)h->run_max * 10,
		                   TRACE_MAX_TREE_TOKENS, &t)))
			return ret;
		h->tree_tokens = (uint32_t)t;
		if (h->tree_tokens < h->run_max)
			return ierr(c, "tree_tokens",
			            "expected at least "
			            "accept_run_max = %" PRIu32
			            " (T = R is a chain), "
			            "got %" PRIu32,
			            h->run_max, h->tree_tokens);
	} else if (json_get(o, "tree_tokens")) {
		return ierr(c, "tree_tokens",
		            "needs accept_run_max (the runs' "
		            "draft length)");
	}
	if (trace_header_entropy_full(h))
		return get_u32(c, o, "", "lookahead", 1, 0, &h->lookahead);
	if (json_get(o, "lookahead"))
		return ierr(c, "lookahead",
		            "not allowed without continuation rows "
		            "(%s)",
		            ent ? "accept_run_max is given"
		                : "\"entropy\" is false");
	return 0;
}

static int parse_header(const struct ictx *c, const struct json_value *o,
                        struct trace_header *h, int *is11)
{
	static const char *const keys[] = {
		"version", "lookahead", "sampled", "temperature", "top_p",
		"seed",    "synthetic", "models",  "provenance",  NULL,
	};
	static const char *const keys11[] = {
		"version",      "lookahead", "sampled",        "temperature",
		"top_p",        "seed",      "synthetic",      "models",
		"provenance",   "entropy",   "accept_run_max", "tree_tokens",
		"draft_lookup", NULL,
	};
	static const char *const model_keys[] = { "draft", "target", NULL };
	static const char *const lookup_keys[] = { "target", NULL };
	const struct json_value *models, *prov, *ver;
	int ret;

	if (o->type != JSON_OBJECT)
		return ierr(c, "(header)",
		            "expected the header object on the first "
		            "line, got a %s",
		            json_type_name(o->type));
	ver = json_get(o, "version");
	if (ver && ver->type == JSON_STRING) {
		if (strcmp(ver->str, "1.1") != 0)
			return ierr(c, "version",
			            "expected 1 or \"1.1\", got \"%s\"",
			            ver->str);
		h->version = TRACE_FORMAT_VERSION;
		*is11 = 1;
		if ((ret = check_keys(c, o, "", keys11)) ||
		    (ret = parse_header11(c, o, h)))
			return ret;
	} else {
		if ((ret = check_keys(c, o, "", keys)) ||
		    (ret = get_u32(c, o, "", "version", 1, 0, &h->version)))
			return ret;
		if (h->version != TRACE_FORMAT_VERSION)
			return ierr(c, "version", "expected %d, got %" PRIu32,
			            TRACE_FORMAT_VERSION, h->version);
		if ((ret = get_u32(c, o, "", "lookahead", 1, 0, &h->lookahead)))
			return ret;
	}
	if ((ret = get_bool(c, o, "", "sampled", 1, 0, &h->sampled)) ||
	    (ret = get_num(c, o, "", "temperature", h->sampled, 0.0, 0.0, 1e6,
	                   &h->temperature)) ||
	    (ret = get_num(c, o, "", "top_p", 0, 1.0, 0.0, 1.0, &h->top_p)) ||
	    (ret = get_u64(c, o, "", "seed", 0, 0, UINT64_MAX, &h->seed)) ||
	    (ret = get_bool(c, o, "", "synthetic", 0, 0, &h->synthetic)))
		return ret;
	if (h->lookahead < 1 && trace_header_entropy_full(h))
		return ierr(c, "lookahead", "expected >= 1, got 0");
	models = json_get(o, "models");
	if (!models)
		return ierr(c, "models",
		            "missing (expected {\"draft\": ..., "
		            "\"target\": ...})");
	if (models->type != JSON_OBJECT)
		return ierr(c, "models", "expected an object, got a %s",
		            json_type_name(models->type));
	if (h->features & TRACE_F_DRAFT_LOOKUP) {
		/* the draft is the lookup: it has no model */
		if (json_get(models, "draft"))
			return ierr(
			        c, "models.draft",
			        "not allowed with "
			        "draft_lookup \"%s\" (a lookup has no model)",
			        h->draft_lookup);
		if ((ret = check_keys(c, models, "models", lookup_keys)))
			return ret;
	} else if ((ret = check_keys(c, models, "models", model_keys)) ||
	           (ret = parse_model(c, json_get(models, "draft"), "draft",
	                              &h->draft))) {
		return ret;
	}
	if ((ret = parse_model(c, json_get(models, "target"), "target",
	                       &h->target)))
		return ret;
	prov = json_get(o, "provenance");
	if (prov) {
		if (prov->type != JSON_OBJECT)
			return ierr(c, "provenance",
			            "expected an object of strings, "
			            "got a %s",
			            json_type_name(prov->type));
		/* the reader's limit, before anything is copied */
		if (prov->len > TRACE_MAX_PROV)
			return ierr(c, "provenance",
			            "expected at most %u entries, "
			            "got %zu",
			            TRACE_MAX_PROV, prov->len);
		for (size_t i = 0; i < prov->len; i++) {
			const struct json_value *v = &prov->members[i].val;
			const char *k = prov->members[i].key;
			char f[160];
			join(f, sizeof f, "provenance", k);
			if (strlen(k) == 0 || strchr(k, '\0') != k + strlen(k))
				return ierr(c, f, "expected a non-empty key");
			if (v->type != JSON_STRING || strlen(v->str) != v->len)
				return ierr(c, f,
				            "expected a string without NUL, "
				            "got a %s",
				            json_type_name(v->type));
			/* json.c rejects duplicate keys: append, no lookup */
			if (trace_header_append_prov(h, k, v->str))
				return ienomem(c, f);
		}
	}
	return 0;
}

static int float_array(const struct ictx *c, const struct json_value *o,
                       const char *key, int required, double lo, double hi,
                       float **out, size_t *n)
{
	const struct json_value *v = json_get(o, key);

	*out = NULL;
	if (!v) {
		if (required)
			return ierr(c, key,
			            "missing (expected an array of numbers)");
		return 0;
	}
	if (v->type != JSON_ARRAY)
		return ierr(c, key, "expected an array of numbers, got a %s",
		            json_type_name(v->type));
	*out = calloc(v->len ? v->len : 1, sizeof(float));
	if (!*out)
		return ienomem(c, key);
	for (size_t i = 0; i < v->len; i++) {
		const struct json_value *e = &v->items[i];
		char f[64], num[UTIL_NUM_LEN];
		snprintf(f, sizeof f, "%s[%zu]", key, i);
		if (e->type != JSON_NUMBER)
			return ierr(c, f, "expected a number, got a %s",
			            json_type_name(e->type));
		if (e->num < lo || e->num > hi)
			return ierr(c, f,
			            "expected a value in [%g, %g], got %s", lo,
			            hi, util_fmt_double(num, e->num));
		(*out)[i] = (float)e->num;
	}
	*n = v->len;
	return 0;
}

struct iseq {
	float *entropy, *top1, *accept, *cont;
	uint32_t *tokens, *cont_pos, *runs;
};

static void iseq_free(struct iseq *s)
{
	free(s->runs);
	free(s->entropy);
	free(s->top1);
	free(s->accept);
	free(s->cont);
	free(s->tokens);
	free(s->cont_pos);
	memset(s, 0, sizeof *s);
}

/* "tokens": n target token ids below the target's vocab_size. */
static int parse_tokens(const struct ictx *c, const struct json_value *o,
                        const struct trace_header *h, size_t n, struct iseq *b)
{
	const struct json_value *tv = json_get(o, "tokens");

	if (!tv)
		return 0;
	if (tv->type != JSON_ARRAY || tv->len != n)
		return ierr(c, "tokens", "expected an array of %zu token ids",
		            n);
	b->tokens = calloc(n ? n : 1, sizeof *b->tokens);
	if (!b->tokens)
		return ienomem(c, "tokens");
	for (size_t i = 0; i < n; i++) {
		const struct json_value *e = &tv->items[i];
		char f[64];
		snprintf(f, sizeof f, "tokens[%zu]", i);
		if (e->type != JSON_NUMBER || !e->is_uint ||
		    e->u64 >= h->target.vocab_size)
			return ierr(
			        c, f,
			        "expected a token id below vocab_size %" PRIu32,
			        h->target.vocab_size);
		b->tokens[i] = (uint32_t)e->u64;
	}
	return 0;
}

/* "cont": the continuation rows of a chain with entropies, exactly for
 * the positions with accept < 1 (seq->accept and seq->n are set). */
static int parse_cont(const struct ictx *c, const struct json_value *o,
                      const struct trace_header *h, struct trace_seq *seq,
                      struct iseq *b)
{
	const struct json_value *cv = json_get(o, "cont");
	const uint32_t K = h->lookahead;
	const size_t n = seq->n;

	if (cv) {
		if (cv->type != JSON_ARRAY)
			return ierr(c, "cont",
			            "expected an array of [pos, [%" PRIu32
			            " entropies]] pairs, got a %s",
			            K, json_type_name(cv->type));
		if (cv->len > n)
			return ierr(c, "cont",
			            "expected at most one row per generated "
			            "position (%zu), got %zu rows",
			            n, cv->len);
		/* every row's shape first: what is allocated below is then
		 * bounded by the numbers actually on the line */
		for (size_t i = 0; i < cv->len; i++) {
			const struct json_value *e = &cv->items[i];
			char f[64];
			snprintf(f, sizeof f, "cont[%zu]", i);
			if (e->type != JSON_ARRAY || e->len != 2 ||
			    e->items[0].type != JSON_NUMBER ||
			    !e->items[0].is_uint ||
			    e->items[1].type != JSON_ARRAY)
				return ierr(c, f,
				            "expected [pos, [%" PRIu32
				            " entropies]]",
				            K);
			if (e->items[1].len != K)
				return ierr(c, f,
				            "expected %" PRIu32
				            " entropies (lookahead), "
				            "got %zu",
				            K, e->items[1].len);
		}
		b->cont_pos = calloc(cv->len ? cv->len : 1,
		                     sizeof *b->cont_pos);
		b->cont = calloc(cv->len ? cv->len * K : 1, sizeof *b->cont);
		if (!b->cont_pos || !b->cont)
			return ienomem(c, "cont");
		for (size_t i = 0; i < cv->len; i++) {
			const struct json_value *e = &cv->items[i], *row;
			char f[64];
			snprintf(f, sizeof f, "cont[%zu]", i);
			if (e->items[0].u64 >= n)
				return ierr(c, f,
				            "position %" PRIu64
				            " is beyond the %zu "
				            "generated positions",
				            e->items[0].u64, n);
			if (i > 0 && e->items[0].u64 <= b->cont_pos[i - 1])
				return ierr(
				        c, f,
				        "positions must be strictly ascending "
				        "(%" PRIu64 " after %" PRIu32 ")",
				        e->items[0].u64, b->cont_pos[i - 1]);
			b->cont_pos[i] = (uint32_t)e->items[0].u64;
			row = &e->items[1];
			for (uint32_t j = 0; j < K; j++) {
				const struct json_value *x = &row->items[j];
				if (x->type != JSON_NUMBER || x->num < 0.0) {
					snprintf(f, sizeof f,
					         "cont[%zu][1][%" PRIu32 "]", i,
					         j);
					return ierr(c, f,
					            "expected an entropy >= 0");
				}
				b->cont[i * K + j] = (float)x->num;
			}
		}
		seq->n_cont = (uint32_t)cv->len;
	}
	seq->cont_pos = b->cont_pos;
	seq->cont_entropy = b->cont;
	/* rows must exist exactly for positions with a_p < 1 */
	for (uint32_t i = 0, r = 0; i < seq->n; i++) {
		int has = r < seq->n_cont && seq->cont_pos[r] == i;
		char f[64];
		if (seq->accept[i] < 1.0f && !has) {
			char num[UTIL_NUM_LEN];
			snprintf(f, sizeof f, "cont");
			return ierr(c, f,
			            "position %" PRIu32
			            " has accept %s < 1 but no "
			            "continuation row",
			            i, util_fmt_float(num, seq->accept[i]));
		}
		if (seq->accept[i] >= 1.0f && has) {
			snprintf(f, sizeof f, "cont");
			return ierr(c, f,
			            "position %" PRIu32 " has accept 1 but a "
			            "continuation row",
			            i);
		}
		r += has;
	}
	return 0;
}

static int parse_seq(const struct ictx *c, const struct json_value *o,
                     const struct trace_header *h, uint32_t index,
                     struct trace_seq *seq, struct iseq *b)
{
	static const char *const keys[] = {
		"id",     "prompt_len", "entropy", "top1",
		"accept", "tokens",     "cont",    NULL,
	};
	size_t n = 0, n2 = 0, n3 = 0;
	int ret;

	memset(seq, 0, sizeof *seq);
	if (o->type != JSON_OBJECT)
		return ierr(c, "(sequence)",
		            "expected a sequence object, got a %s",
		            json_type_name(o->type));
	if ((ret = check_keys(c, o, "", keys)) ||
	    (ret = get_u32(c, o, "", "id", 0, index, &seq->id)) ||
	    (ret = get_u32(c, o, "", "prompt_len", 1, 0, &seq->prompt_len)) ||
	    (ret = float_array(c, o, "entropy", 1, 0.0, 1e6, &b->entropy,
	                       &n)) ||
	    (ret = float_array(c, o, "top1", 1, 0.0, 1.0, &b->top1, &n2)) ||
	    (ret = float_array(c, o, "accept", 1, 0.0, 1.0, &b->accept, &n3)))
		return ret;
	if (n2 != n)
		return ierr(c, "top1",
		            "expected %zu entries (as 'entropy'), got %zu", n,
		            n2);
	if (n3 != n)
		return ierr(c, "accept",
		            "expected %zu entries (as 'entropy'), got %zu", n,
		            n3);
	if (n > UINT32_MAX)
		return ierr(c, "entropy", "too many positions");
	seq->n = (uint32_t)n;
	seq->entropy = b->entropy;
	seq->top1 = b->top1;
	seq->accept = b->accept;
	if ((ret = parse_tokens(c, o, h, n, b)))
		return ret;
	seq->tokens = b->tokens;
	if ((ret = parse_cont(c, o, h, seq, b)))
		return ret;
	ret = trace_seq_check(h, seq, c->err, c->errlen);
	return ret ? iprefix(c, ret) : 0;
}

/* A sequence of a version "1.1" log (capture/IMPORT-RUNS.md): n given,
 * and the arrays the header's features call for, each of n entries. */
static int parse_seq11(const struct ictx *c, const struct json_value *o,
                       const struct trace_header *h, uint32_t index,
                       struct trace_seq *seq, struct iseq *b)
{
	static const char *const keys[] = {
		"id",      "prompt_len", "n",    "accept_run", "accept",
		"entropy", "top1",       "cont", "tokens",     NULL,
	};
	const int runs = (h->features & TRACE_F_ACCEPT_RUNS) != 0;
	const int ent = trace_header_has_entropy(h);
	const struct {
		const char *key;
		int allowed;
		const char *why;
	} no[] = {
		{ "accept", !runs, "accept_run_max is given: give accept_run" },
		{ "accept_run", runs, "the header gives no accept_run_max" },
		{ "entropy", ent, "the header's \"entropy\" is false" },
		{ "top1", ent, "the header's \"entropy\" is false" },
		{ "cont", trace_header_entropy_full(h),
		  runs ? "a run-length log has no continuation rows"
		       : "the header's \"entropy\" is false" },
	};
	const char *const fl[2] = { "entropy", "top1" };
	float **fp[2] = { &b->entropy, &b->top1 };
	size_t m;
	int ret;

	memset(seq, 0, sizeof *seq);
	if (o->type != JSON_OBJECT)
		return ierr(c, "(sequence)",
		            "expected a sequence object, got a %s",
		            json_type_name(o->type));
	if ((ret = check_keys(c, o, "", keys)) ||
	    (ret = get_u32(c, o, "", "id", 0, index, &seq->id)) ||
	    (ret = get_u32(c, o, "", "prompt_len", 1, 0, &seq->prompt_len)) ||
	    (ret = get_u32(c, o, "", "n", 1, 0, &seq->n)))
		return ret;
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (!no[i].allowed && json_get(o, no[i].key))
			return ierr(c, no[i].key, "not allowed: %s", no[i].why);
	for (int i = 0; ent && i < 2; i++) {
		if ((ret = float_array(c, o, fl[i], 1, 0.0, i ? 1.0 : 1e6,
		                       fp[i], &m)))
			return ret;
		if (m != seq->n)
			return ierr(c, fl[i],
			            "expected n = %" PRIu32 " entries, got "
			            "%zu",
			            seq->n, m);
	}
	if (runs) {
		const struct json_value *v = json_get(o, "accept_run");

		if (!v)
			return ierr(c, "accept_run",
			            "missing (expected %" PRIu32 " integers)",
			            seq->n);
		if (v->type != JSON_ARRAY || v->len != seq->n)
			return ierr(c, "accept_run",
			            "expected an array of n = %" PRIu32
			            " integers, got %s of %zu",
			            seq->n,
			            v->type == JSON_ARRAY ? "an array"
			                                  : "a value",
			            v->type == JSON_ARRAY ? v->len : (size_t)1);
		b->runs = calloc(seq->n ? seq->n : 1, sizeof *b->runs);
		if (!b->runs)
			return ienomem(c, "accept_run");
		for (uint32_t i = 0; i < seq->n; i++) {
			const struct json_value *e = &v->items[i];
			char f[64];

			snprintf(f, sizeof f, "accept_run[%" PRIu32 "]", i);
			if (e->type != JSON_NUMBER || !e->is_uint)
				return ierr(
				        c, f,
				        "expected a non-negative integer, got "
				        "a %s",
				        json_type_name(e->type));
			if (e->u64 > h->run_max)
				return ierr(c, f,
				            "expected at most accept_run_max = "
				            "%" PRIu32 ", got %" PRIu64,
				            h->run_max, e->u64);
			b->runs[i] = (uint32_t)e->u64;
		}
		seq->accept_run = b->runs;
	} else {
		if ((ret = float_array(c, o, "accept", 1, 0.0, 1.0, &b->accept,
		                       &m)))
			return ret;
		if (m != seq->n)
			return ierr(c, "accept",
			            "expected n = %" PRIu32 " entries, "
			            "got %zu",
			            seq->n, m);
		seq->accept = b->accept;
	}
	seq->entropy = b->entropy;
	seq->top1 = b->top1;
	if ((ret = parse_tokens(c, o, h, seq->n, b)))
		return ret;
	seq->tokens = b->tokens;
	if (trace_header_entropy_full(h) && (ret = parse_cont(c, o, h, seq, b)))
		return ret;
	ret = trace_seq_check(h, seq, c->err, c->errlen);
	return ret ? iprefix(c, ret) : 0;
}

/* Hash f to its end and rewind it: the source's SHA-256 goes into the
 * header, which is written before any sequence, so a regular file is
 * hashed through the same open file before it is parsed (no second open
 * that could see another file). A pipe, FIFO or device cannot be read
 * twice and is refused with a message instead of being hashed for ever. */
static int hash_source(const char *in, FILE *f, char sha[65], char *err,
                       size_t errlen)
{
	struct sha256_ctx ctx;
	unsigned char buf[65536], d[32];
	struct stat st;
	size_t got;

	if (fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "%s: %s", in, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
		         "%s: not a regular file (%s): the importer "
		         "reads its input twice, to hash it for the trace's "
		         "header and to convert it; save it to a file first",
		         in,
		         S_ISFIFO(st.st_mode)  ? "a pipe or FIFO"
		         : S_ISDIR(st.st_mode) ? "a directory"
		         : S_ISCHR(st.st_mode) ? "a character device"
		                               : "special");
		return -EINVAL;
	}
	sha256_init(&ctx);
	while ((got = fread(buf, 1, sizeof buf, f)) > 0)
		sha256_update(&ctx, buf, got);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", in);
		return -EIO;
	}
	sha256_final(&ctx, d);
	for (int i = 0; i < 32; i++)
		snprintf(sha + 2 * i, 3, "%02x", d[i]);
	rewind(f);
	return 0;
}

int capture_import(const char *in, const char *out, char *err, size_t errlen)
{
	struct ictx c = { .path = in, .err = err, .errlen = errlen };
	struct trace_header h;
	struct trace_writer *w = NULL;
	struct trace_idset ids = { 0 };
	struct json_value *j = NULL;
	struct iseq b;
	FILE *f = NULL;
	char *line = NULL, sha[65], jerr[256];
	size_t cap = 0;
	ssize_t got;
	int ret = 0, have_header = 0, is11 = 0;
	uint32_t n_seq = 0;

	memset(&h, 0, sizeof h);
	memset(&b, 0, sizeof b);
	f = fopen(in, "r");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", in,
		         strerror(errno));
		return ret;
	}
	ret = hash_source(in, f, sha, err, errlen);
	if (ret)
		goto error;
	while ((got = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)got;
		struct trace_seq seq;

		c.line++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		        line[len - 1] == ' ' || line[len - 1] == '\t'))
			len--;
		if (len == 0)
			continue;
		ret = json_parse(line, len, &j, jerr, sizeof jerr);
		if (ret) {
			snprintf(err, errlen, "%s:%zu: invalid JSON: %s", in,
			         c.line, jerr);
			goto error;
		}
		if (!have_header) {
			ret = parse_header(&c, j, &h, &is11);
			if (ret)
				goto error;
			if (!trace_header_prov(&h, "import_source") &&
			    (trace_header_add_prov(&h, "import_source", in) ||
			     trace_header_add_prov(&h, "import_source_sha256",
			                           sha) ||
			     trace_header_add_prov(&h, "import_tool",
			                           "ahasd-capture "
			                           "import " AHASD_VERSION))) {
				ret = ienomem(&c, "provenance");
				goto error;
			}
			/* the checks the writer makes, blamed on this line */
			ret = trace_header_check(&h, err, errlen);
			if (ret) {
				iprefix(&c, ret);
				goto error;
			}
			ret = trace_writer_open(&w, out, &h, err, errlen);
			if (ret)
				goto error;
			have_header = 1;
		} else {
			uint64_t first;

			ret = is11 ? parse_seq11(&c, j, &h, n_seq, &seq, &b)
			           : parse_seq(&c, j, &h, n_seq, &seq, &b);
			if (ret)
				goto error;
			ret = trace_idset_add(&ids, seq.id, c.line, &first);
			if (ret < 0) {
				ienomem(&c, "id");
				goto error;
			}
			if (ret > 0) {
				ret = ierr(&c, "id",
				           "duplicate sequence id %" PRIu32
				           " (also on line %" PRIu64 ")",
				           seq.id, first);
				goto error;
			}
			ret = trace_writer_add(w, &seq, err, errlen);
			if (ret)
				goto error;
			iseq_free(&b);
			n_seq++;
		}
		json_free(&j);
	}
	if (ferror(f)) {
		ret = -EIO;
		snprintf(err, errlen, "%s:%zu: read error", in, c.line + 1);
		goto error;
	}
	if (!have_header) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: empty: expected a header object on the "
		         "first line",
		         in);
		goto error;
	}
	if (n_seq == 0) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: no sequence objects after the header", in);
		goto error;
	}
	ret = trace_writer_close(&w, err, errlen);
error:
	trace_writer_abort(&w);
	trace_idset_clear(&ids);
	json_free(&j);
	iseq_free(&b);
	free(line);
	fclose(f);
	trace_header_clear(&h);
	return ret;
}
