/* trace.c - ahasd trace format v1: records, streaming reader, writer.
 *
 * The format is documented in traces/FORMAT.md. This is the only file that
 * touches msgpack. The reader reads the file in 64 KiB chunks into its own
 * buffer, hashing every byte as it arrives (SHA-256, one pass), and walks
 * each top-level object's headers (scan_object) before msgpack-c sees it:
 * msgpack-c unpacks only objects whose bytes are all there, so what it
 * allocates is bounded by bytes actually read, and a header claiming more
 * than the file holds is reported as such. Every field needed is copied
 * into the reader's own growing arrays (bins are memcpy'd); no
 * msgpack_object is kept past the next call.
 */
#include "trace.h"
#include "outfile.h"
#include "util.h"

#include <errno.h>
#include <float.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "sha256.h"

#define TRACE_CHUNK ((size_t)64 * 1024)

#if defined(__GNUC__)
#define TRACE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TRACE_PRINTF(a, b)
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define TRACE_BIG_ENDIAN 1
#else
#define TRACE_BIG_ENDIAN 0
#endif

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */



/* Prepend "prefix" to the message already in err. */
static void prefix_err(char *err, size_t errlen, const char *prefix)
{
	size_t plen, mlen;

	if (!err || errlen == 0)
		return;
	plen = strlen(prefix);
	mlen = strnlen(err, errlen - 1);
	if (plen >= errlen - 1) {
		snprintf(err, errlen, "%s", prefix);
		return;
	}
	if (plen + mlen > errlen - 1)
		mlen = errlen - 1 - plen;
	memmove(err + plen, err, mlen);
	memcpy(err, prefix, plen);
	err[plen + mlen] = '\0';
}

static void swap32_array(void *p, size_t count)
{
	uint32_t *u = p;

	for (size_t i = 0; i < count; i++) {
		uint32_t v = u[i];
		u[i] = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) |
		       (v << 24);
	}
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/* Printable copy of untrusted bytes: ASCII as-is, others as \xNN; at most
 * 40 input bytes, "..." when cut. */
static const char *escape(const char *p, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 40 && o + 5 < len; i++) {
		const unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
	}
	if (n > 40 && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

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

/* Which dims scale per step: "ML" for attention (M queries over L keys),
 * "M" (rows scale with tokens per step) for every other kind. */
static const char *kind_scales(enum trace_op_kind kind)
{
	return kind == TRACE_OP_ATTENTION ? "ML" : "M";
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

int trace_seq_check(const struct trace_header *h, const struct trace_seq *s,
                    char *err, size_t errlen)
{
	uint32_t K, c = 0;

	if (!h || !s) {
		util_set_err(err, errlen, "trace_seq_check: NULL argument");
		return -EINVAL;
	}
	K = h->lookahead;
	if (K < 1) {
		util_set_err(err, errlen, "field 'lookahead': expected >= 1, got 0");
		return -EINVAL;
	}
	if (s->n < 1) {
		util_set_err(err, errlen, "field 'n' (sequence %" PRIu32 "): "
		        "expected >= 1 generated tokens, got 0", s->id);
		return -EINVAL;
	}
	if (!s->entropy || !s->top1 || !s->accept) {
		util_set_err(err, errlen, "field '%s' (sequence %" PRIu32 "): "
		        "expected an array of %" PRIu32 " floats, got NULL",
		        !s->entropy ? "entropy" : !s->top1 ? "top1" : "accept",
		        s->id, s->n);
		return -EINVAL;
	}
	if (s->n_cont > s->n) {
		util_set_err(err, errlen, "field 'cont_pos' (sequence %" PRIu32 "): "
		        "expected at most n = %" PRIu32 " positions, got %" PRIu32,
		        s->id, s->n, s->n_cont);
		return -EINVAL;
	}
	if ((uint64_t)s->n_cont * K * 4 > TRACE_MAX_BIN) {
		util_set_err(err, errlen, "field 'cont_entropy' (sequence %" PRIu32
		        "): expected at most %u bytes (a msgpack bin), got n_cont "
		        "%" PRIu32 " x lookahead %" PRIu32 " float32", s->id,
		        TRACE_MAX_BIN, s->n_cont, K);
		return -EINVAL;
	}
	if ((uint64_t)s->prompt_len + s->n > h->target.seq_len) {
		util_set_err(err, errlen, "field 'prompt_len' (sequence %" PRIu32
		        "): expected prompt_len + n = %" PRIu32 " + %" PRIu32
		        " = %" PRIu64 " within the target model's context "
		        "(seq_len %" PRIu32 ")", s->id, s->prompt_len, s->n,
		        (uint64_t)s->prompt_len + s->n, h->target.seq_len);
		return -EINVAL;
	}
	if (s->n_cont > 0 && (!s->cont_pos || !s->cont_entropy)) {
		util_set_err(err, errlen, "field '%s' (sequence %" PRIu32 "): "
		        "expected an array for %" PRIu32 " continuations, got NULL",
		        !s->cont_pos ? "cont_pos" : "cont_entropy", s->id,
		        s->n_cont);
		return -EINVAL;
	}
	if (seq_ok_fast(h, s))
		return 0;
	/* something is wrong: find the first violation and describe it */
	for (uint32_t i = 0; i < s->n_cont; i++) {
		if (s->cont_pos[i] >= s->n) {
			util_set_err(err, errlen, "field 'cont_pos[%" PRIu32 "]' "
			        "(sequence %" PRIu32 "): expected a position < n = "
			        "%" PRIu32 ", got %" PRIu32, i, s->id, s->n,
			        s->cont_pos[i]);
			return -EINVAL;
		}
		if (i > 0 && s->cont_pos[i] <= s->cont_pos[i - 1]) {
			util_set_err(err, errlen, "field 'cont_pos[%" PRIu32 "]' "
			        "(sequence %" PRIu32 "): expected strictly ascending "
			        "positions (> %" PRIu32 "), got %" PRIu32, i, s->id,
			        s->cont_pos[i - 1], s->cont_pos[i]);
			return -EINVAL;
		}
	}
	for (uint32_t p = 0; p < s->n; p++) {
		const float e = s->entropy[p], t = s->top1[p], a = s->accept[p];
		const bool has_cont = c < s->n_cont && s->cont_pos[c] == p;
		char num[UTIL_NUM_LEN];

		if (!isfinite(e) || e < 0.0f) {
			util_set_err(err, errlen, "field 'entropy[%" PRIu32 "]' (sequence "
			        "%" PRIu32 "): expected a finite value >= 0 nats, "
			        "got %s", p, s->id, util_fmt_float(num, e));
			return -EINVAL;
		}
		if (!isfinite(t) || t < 0.0f || t > 1.0f) {
			util_set_err(err, errlen, "field 'top1[%" PRIu32 "]' (sequence "
			        "%" PRIu32 "): expected a probability in [0, 1], "
			        "got %s", p, s->id, util_fmt_float(num, t));
			return -EINVAL;
		}
		if (!isfinite(a) || a < 0.0f || a > 1.0f) {
			util_set_err(err, errlen, "field 'accept[%" PRIu32 "]' (sequence "
			        "%" PRIu32 "): expected a probability in [0, 1], "
			        "got %s", p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (!h->sampled && a != 0.0f && a != 1.0f) {
			util_set_err(err, errlen, "field 'accept[%" PRIu32 "]' (sequence "
			        "%" PRIu32 "): expected 0 or 1 in a greedy trace, "
			        "got %s", p, s->id, util_fmt_float(num, a));
			return -EINVAL;
		}
		if (a < 1.0f && !has_cont) {
			util_set_err(err, errlen, "field 'cont_pos' (sequence %" PRIu32
			        "): expected a continuation for position %" PRIu32
			        " (accept %s < 1), got none", s->id, p,
			        util_fmt_float(num, a));
			return -EINVAL;
		}
		if (a >= 1.0f && has_cont) {
			util_set_err(err, errlen, "field 'cont_pos[%" PRIu32 "]' (sequence "
			        "%" PRIu32 "): expected only positions with accept "
			        "< 1, got position %" PRIu32 " with accept 1", c,
			        s->id, p);
			return -EINVAL;
		}
		if (has_cont)
			c++;
	}
	for (size_t i = 0; i < (size_t)s->n_cont * K; i++) {
		const float e = s->cont_entropy[i];
		char num[UTIL_NUM_LEN];

		if (!isfinite(e) || e < 0.0f) {
			util_set_err(err, errlen, "field 'cont_entropy[%zu][%zu]' "
			        "(sequence %" PRIu32 "): expected a finite value "
			        ">= 0 nats, got %s", i / K, i % K, s->id,
			        util_fmt_float(num, e));
			return -EINVAL;
		}
	}
	return 0;
}

int trace_model_check(const struct trace_model *m, const char *which,
                      char *err, size_t errlen)
{
	const char *w = which ? which : "model";
	const struct { const char *name; uint32_t v, max; } dims[] = {
		{ "dim", m->dim, TRACE_MAX_DIM },
		{ "hidden_dim", m->hidden_dim, TRACE_MAX_HIDDEN_DIM },
		{ "n_layers", m->n_layers, TRACE_MAX_LAYERS },
		{ "n_heads", m->n_heads, TRACE_MAX_HEADS },
		{ "n_kv_heads", m->n_kv_heads, m->n_heads },
		{ "vocab_size", m->vocab_size, TRACE_MAX_VOCAB },
		{ "seq_len", m->seq_len, TRACE_MAX_SEQ_LEN },
	};

	if (m->name[0] == '\0') {
		util_set_err(err, errlen, "field 'models.%s.name': expected a "
		        "non-empty string, got \"\"", w);
		return -EINVAL;
	}
	if (memchr(m->name, '\0', sizeof m->name) == NULL) {
		util_set_err(err, errlen, "field 'models.%s.name': expected at "
		        "most %d bytes", w, TRACE_NAME_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		if (dims[i].v == 0) {
			util_set_err(err, errlen, "field 'models.%s.%s': expected a "
			        "value > 0, got 0", w, dims[i].name);
			return -EINVAL;
		}
		if (dims[i].v > dims[i].max) {
			util_set_err(err, errlen, "field 'models.%s.%s': expected a "
			        "value in [1, %" PRIu32 "]%s, got %" PRIu32, w,
			        dims[i].name, dims[i].max,
			        dims[i].max == m->n_heads && i == 4 ? " (n_heads)"
			                                            : "",
			        dims[i].v);
			return -EINVAL;
		}
	}
	if (m->weight_bits < 1 || m->weight_bits > 64) {
		util_set_err(err, errlen, "field 'models.%s.weight_bits': expected a "
		        "value in [1, 64], got %" PRIu32, w, m->weight_bits);
		return -EINVAL;
	}
	if (m->weight_bytes > TRACE_MAX_WEIGHT_BYTES) {
		util_set_err(err, errlen, "field 'models.%s.weight_bytes': expected "
		        "at most %llu, got %" PRIu64, w,
		        (unsigned long long)TRACE_MAX_WEIGHT_BYTES, m->weight_bytes);
		return -EINVAL;
	}
	if (m->n_ops < 1 || !m->ops) {
		util_set_err(err, errlen, "field 'models.%s.ops': expected at least "
		        "one op, got none", w);
		return -EINVAL;
	}
	if (m->n_ops > TRACE_MAX_OPS) {
		util_set_err(err, errlen, "field 'models.%s.ops': expected at most "
		        "%u ops, got %" PRIu32, w, TRACE_MAX_OPS, m->n_ops);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];
		const char *bad = NULL;
		const struct { const char *name; uint32_t v, max; } od[] = {
			{ "k", op->k, TRACE_MAX_OP_DIM },
			{ "n", op->n, TRACE_MAX_OP_DIM },
			{ "heads", op->heads, TRACE_MAX_HEADS },
			{ "kv_heads", op->kv_heads, TRACE_MAX_HEADS },
			{ "head_dim", op->head_dim, TRACE_MAX_HEAD_DIM },
		};

		if ((unsigned)op->kind >= TRACE_OP_KIND_COUNT) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32
			        "].kind': expected one of gemm, attention, "
			        "nonlinear, norm, elementwise, embed, got kind %d",
			        w, i, (int)op->kind);
			return -EINVAL;
		}
		if (memchr(op->name, '\0', sizeof op->name) == NULL) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32
			        "].name': expected at most %d bytes", w, i,
			        TRACE_NAME_MAX - 1);
			return -EINVAL;
		}
		switch (op->kind) {
		case TRACE_OP_GEMM:
		case TRACE_OP_EMBED:
			bad = op->k == 0 ? "k" : op->n == 0 ? "n" : NULL;
			break;
		case TRACE_OP_ATTENTION:
			bad = op->heads == 0 ? "heads" :
			      op->kv_heads == 0 ? "kv_heads" :
			      op->head_dim == 0 ? "head_dim" : NULL;
			break;
		default:
			bad = op->n == 0 ? "n" : NULL;
			break;
		}
		if (bad) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32 "].%s'"
			        ": expected a value > 0 for kind '%s', got 0", w, i,
			        bad, kind_names[op->kind]);
			return -EINVAL;
		}
		for (size_t j = 0; j < sizeof od / sizeof od[0]; j++) {
			if (od[j].v > od[j].max) {
				util_set_err(err, errlen, "field 'models.%s.ops[%"
				        PRIu32 "].%s': expected at most %" PRIu32
				        ", got %" PRIu32, w, i, od[j].name,
				        od[j].max, od[j].v);
				return -EINVAL;
			}
		}
		if (op->kind == TRACE_OP_ATTENTION &&
		    op->heads % op->kv_heads != 0) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32
			        "].kv_heads': expected a divisor of heads = %"
			        PRIu32 ", got %" PRIu32, w, i, op->heads,
			        op->kv_heads);
			return -EINVAL;
		}
		if (op->repeat < 1) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32
			        "].repeat': expected >= 1, got 0", w, i);
			return -EINVAL;
		}
		if (op->repeat > TRACE_MAX_REPEAT) {
			util_set_err(err, errlen, "field 'models.%s.ops[%" PRIu32
			        "].repeat': expected a value in [1, %u], got %"
			        PRIu32, w, i, TRACE_MAX_REPEAT, op->repeat);
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
				if (strcmp(h->prov[i].key, h->prov[j].key) == 0) {
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

int trace_header_check(const struct trace_header *h, char *err,
                       size_t errlen)
{
	char num[UTIL_NUM_LEN];
	const char *dup;
	int ret;

	if (h->lookahead < 1) {
		util_set_err(err, errlen, "field 'lookahead': expected >= 1, got 0");
		return -EINVAL;
	}
	if (h->lookahead > TRACE_MAX_LOOKAHEAD) {
		util_set_err(err, errlen, "field 'lookahead': expected a value in "
		        "[1, %u], got %" PRIu32, TRACE_MAX_LOOKAHEAD, h->lookahead);
		return -EINVAL;
	}
	if (!isfinite(h->temperature) || h->temperature < 0.0) {
		util_set_err(err, errlen, "field 'temperature': expected a finite "
		        "value >= 0, got %s", util_fmt_double(num, h->temperature));
		return -EINVAL;
	}
	if (!isfinite(h->top_p) || h->top_p <= 0.0 || h->top_p > 1.0) {
		util_set_err(err, errlen, "field 'top_p': expected a value in (0, 1], "
		        "got %s", util_fmt_double(num, h->top_p));
		return -EINVAL;
	}
	if (h->n_prov > TRACE_MAX_PROV) {
		util_set_err(err, errlen, "field 'provenance': expected at most %u "
		        "entries, got %zu", TRACE_MAX_PROV, h->n_prov);
		return -EINVAL;
	}
	for (size_t i = 0; i < h->n_prov; i++) {
		if (!h->prov[i].key || !h->prov[i].value) {
			util_set_err(err, errlen, "field 'provenance': expected string "
			        "pairs, got NULL at entry %zu", i);
			return -EINVAL;
		}
	}
	if (prov_find_dup(h, &dup) < 0) {
		util_set_err(err, errlen, "field 'provenance': out of memory "
		        "checking %zu keys", h->n_prov);
		return -ENOMEM;
	}
	if (dup) {
		char e[200];

		util_set_err(err, errlen, "field 'provenance.%s': duplicate key "
		        "(given twice)", escape(dup, strlen(dup), e, sizeof e));
		return -EINVAL;
	}
	ret = trace_model_check(&h->draft, "draft", err, errlen);
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
		if (strcmp(h->prov[i].key, key) == 0) {  /* replace */
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

static void op_set(struct trace_op *op, const char *name,
                   enum trace_op_kind kind, uint32_t k, uint32_t n,
                   uint32_t repeat)
{
	memset(op, 0, sizeof *op);
	snprintf(op->name, sizeof op->name, "%s", name);
	op->kind = kind;
	op->k = k;
	op->n = n;
	op->repeat = repeat;
}

int trace_model_llama_ops(struct trace_model *m)
{
	enum { N_OPS = 18 };
	struct trace_op *ops, *o;
	uint32_t dim, hid, L, kv_dim, vocab;
	uint64_t weights;

	if (!m || m->dim == 0 || m->hidden_dim == 0 || m->n_layers == 0 ||
	    m->n_heads == 0 || m->n_kv_heads == 0 || m->vocab_size == 0 ||
	    m->dim % m->n_heads != 0 || m->n_heads % m->n_kv_heads != 0)
		return -EINVAL;
	dim = m->dim;
	hid = m->hidden_dim;
	L = m->n_layers;
	vocab = m->vocab_size;
	kv_dim = (uint32_t)((uint64_t)dim * m->n_kv_heads / m->n_heads);

	ops = calloc(N_OPS, sizeof *ops);
	if (!ops)
		return -ENOMEM;
	o = ops;
	op_set(o++, "tok_embedding", TRACE_OP_EMBED, vocab, dim, 1);
	op_set(o++, "attn_norm", TRACE_OP_NORM, 0, dim, L);
	op_set(o++, "wq", TRACE_OP_GEMM, dim, dim, L);
	op_set(o++, "wk", TRACE_OP_GEMM, dim, kv_dim, L);
	op_set(o++, "wv", TRACE_OP_GEMM, dim, kv_dim, L);
	op_set(o++, "rope", TRACE_OP_ELEMENTWISE, 0, dim + kv_dim, L);
	op_set(o, "attention", TRACE_OP_ATTENTION, 0, 0, L);
	o->heads = m->n_heads;
	o->kv_heads = m->n_kv_heads;
	o->head_dim = dim / m->n_heads;
	o++;
	op_set(o++, "wo", TRACE_OP_GEMM, dim, dim, L);
	op_set(o++, "attn_residual", TRACE_OP_ELEMENTWISE, 0, dim, L);
	op_set(o++, "ffn_norm", TRACE_OP_NORM, 0, dim, L);
	op_set(o++, "w1", TRACE_OP_GEMM, dim, hid, L);
	op_set(o++, "w3", TRACE_OP_GEMM, dim, hid, L);
	op_set(o++, "silu", TRACE_OP_NONLINEAR, 0, hid, L);
	op_set(o++, "gate_mul", TRACE_OP_ELEMENTWISE, 0, hid, L);
	op_set(o++, "w2", TRACE_OP_GEMM, hid, dim, L);
	op_set(o++, "ffn_residual", TRACE_OP_ELEMENTWISE, 0, dim, L);
	op_set(o++, "final_norm", TRACE_OP_NORM, 0, dim, 1);
	op_set(o++, "classifier", TRACE_OP_GEMM, dim, vocab, 1);

	weights = 0;
	for (const struct trace_op *p = ops; p < o; p++)
		if (p->kind == TRACE_OP_GEMM || p->kind == TRACE_OP_EMBED)
			weights += (uint64_t)p->k * p->n * p->repeat;
	if (m->weight_bits == 0)
		m->weight_bits = 8;
	free(m->ops);
	m->ops = ops;
	m->n_ops = (uint32_t)(o - ops);
	m->weight_bytes = (weights * m->weight_bits + 7) / 8;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* reader: msgpack object access                                             */

struct pctx {
	const char *path;
	uint64_t off;
	char *err;
	size_t errlen;
};

static int perr(const struct pctx *c, const char *pre, const char *field,
                const char *fmt, ...) TRACE_PRINTF(4, 5);

static int perr(const struct pctx *c, const char *pre, const char *field,
                const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->err || c->errlen == 0)
		return -EINVAL;
	n = snprintf(c->err, c->errlen, "%s: offset %" PRIu64 ": field '%s%s': ",
	             c->path, c->off, pre, field);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Prefix the message in c->err with "PATH: offset N: ". */
static void prefix_loc(const struct pctx *c)
{
	char pre[512];

	snprintf(pre, sizeof pre, "%s: offset %" PRIu64 ": ", c->path, c->off);
	prefix_err(c->err, c->errlen, pre);
}

/* "str \"abc\"", "unsigned integer 5", "bin of 12 bytes", ... */
static const char *describe(const msgpack_object *o, char *buf, size_t len)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		snprintf(buf, len, "nil");
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		snprintf(buf, len, "bool %s", o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(buf, len, "unsigned integer %" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(buf, len, "negative integer %" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: {
		char num[UTIL_NUM_LEN];

		snprintf(buf, len, "float %s", util_fmt_double(num, o->via.f64));
		break;
	}
	case MSGPACK_OBJECT_STR: {
		char e[200];

		snprintf(buf, len, "str \"%s\"",
		         escape(o->via.str.ptr, o->via.str.size, e, sizeof e));
		break;
	}
	case MSGPACK_OBJECT_BIN:
		snprintf(buf, len, "bin of %" PRIu32 " bytes", o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		snprintf(buf, len, "array of %" PRIu32, o->via.array.size);
		break;
	case MSGPACK_OBJECT_MAP:
		snprintf(buf, len, "map of %" PRIu32 " entries", o->via.map.size);
		break;
	default:
		snprintf(buf, len, "ext type");
		break;
	}
	return buf;
}

static const msgpack_object *map_find(const msgpack_object *map,
                                      const char *key)
{
	const size_t klen = strlen(key);
	const msgpack_object_kv *kv = map->via.map.ptr;

	for (uint32_t i = 0; i < map->via.map.size; i++) {
		if (kv[i].key.type == MSGPACK_OBJECT_STR &&
		    kv[i].key.via.str.size == klen &&
		    memcmp(kv[i].key.via.str.ptr, key, klen) == 0)
			return &kv[i].val;
	}
	return NULL;
}

static bool str_eq(const msgpack_object *o, const char *s)
{
	const size_t len = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
	       memcmp(o->via.str.ptr, s, len) == 0;
}

/* Find key or fail with "expected WHAT, got nothing (missing)". */
static int need(const struct pctx *c, const char *pre,
                const msgpack_object *map, const char *key, const char *what,
                const msgpack_object **out)
{
	*out = map_find(map, key);
	if (!*out)
		return perr(c, pre, key, "expected %s, got nothing (missing)",
		            what);
	return 0;
}

static int get_u64(const struct pctx *c, const char *pre,
                   const msgpack_object *map, const char *key, uint64_t max,
                   uint64_t *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = need(c, pre, map, key, "an unsigned integer", &v);

	if (ret < 0)
		return ret;
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return perr(c, pre, key, "expected an unsigned integer, got %s",
		            describe(v, d, sizeof d));
	if (v->via.u64 > max)
		return perr(c, pre, key, "expected an unsigned integer <= %"
		            PRIu64 ", got %" PRIu64, max, v->via.u64);
	*out = v->via.u64;
	return 0;
}

static int get_u32(const struct pctx *c, const char *pre,
                   const msgpack_object *map, const char *key, uint32_t *out)
{
	uint64_t v;
	int ret = get_u64(c, pre, map, key, UINT32_MAX, &v);

	if (ret == 0)
		*out = (uint32_t)v;
	return ret;
}

static int get_f64(const struct pctx *c, const char *pre,
                   const msgpack_object *map, const char *key, double *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = need(c, pre, map, key, "a number", &v);

	if (ret < 0)
		return ret;
	switch (v->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*out = v->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double)v->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double)v->via.i64;
		return 0;
	default:
		return perr(c, pre, key, "expected a number, got %s",
		            describe(v, d, sizeof d));
	}
}

static int get_bool(const struct pctx *c, const char *pre,
                    const msgpack_object *map, const char *key, int *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = need(c, pre, map, key, "a bool", &v);

	if (ret < 0)
		return ret;
	if (v->type != MSGPACK_OBJECT_BOOLEAN)
		return perr(c, pre, key, "expected a bool, got %s",
		            describe(v, d, sizeof d));
	*out = v->via.boolean ? 1 : 0;
	return 0;
}

/* Copy a str object into buf (NUL-terminated, no embedded NUL). */
static int copy_str(const struct pctx *c, const char *pre, const char *key,
                    const msgpack_object *v, char *buf, size_t cap)
{
	char d[256];

	if (v->type != MSGPACK_OBJECT_STR)
		return perr(c, pre, key, "expected a string, got %s",
		            describe(v, d, sizeof d));
	if (v->via.str.size >= cap)
		return perr(c, pre, key, "expected a string of at most %zu bytes, "
		            "got %" PRIu32 " bytes", cap - 1, v->via.str.size);
	if (memchr(v->via.str.ptr, '\0', v->via.str.size))
		return perr(c, pre, key, "expected a string without NUL bytes, "
		            "got one with");
	memcpy(buf, v->via.str.ptr, v->via.str.size);
	buf[v->via.str.size] = '\0';
	return 0;
}

static int get_str(const struct pctx *c, const char *pre,
                   const msgpack_object *map, const char *key, char *buf,
                   size_t cap)
{
	const msgpack_object *v;
	int ret = need(c, pre, map, key, "a string", &v);

	if (ret < 0)
		return ret;
	return copy_str(c, pre, key, v, buf, cap);
}

static char *alloc_str(const msgpack_object *v)
{
	char *s = malloc((size_t)v->via.str.size + 1);

	if (s) {
		memcpy(s, v->via.str.ptr, v->via.str.size);
		s[v->via.str.size] = '\0';
	}
	return s;
}

enum bin_shape {
	BIN_F32_N,      /* n float32 */
	BIN_U32_N,      /* n uint32 */
	BIN_U32_ANY,    /* any number of uint32 */
	BIN_F32_CONT,   /* n_cont x lookahead float32 */
};

/* A bin of exactly `want` bytes (BIN_U32_ANY: any multiple of 4); a and b
 * are n, or n_cont and lookahead, for the error text only. */
static int get_bin(const struct pctx *c, const char *pre,
                   const msgpack_object *map, const char *key, size_t want,
                   enum bin_shape shape, uint32_t a, uint32_t b,
                   bool optional, const msgpack_object_bin **out)
{
	const msgpack_object *v = map_find(map, key);
	char d[256], what[96];

	*out = NULL;
	if (v && v->type == MSGPACK_OBJECT_BIN &&
	    (shape == BIN_U32_ANY ? v->via.bin.size % 4 == 0
	                          : v->via.bin.size == want)) {
		*out = &v->via.bin;
		return 0;  /* the common case, no formatting */
	}
	if (optional && (!v || v->type == MSGPACK_OBJECT_NIL))
		return 0;
	switch (shape) {
	case BIN_F32_N:
		snprintf(what, sizeof what, "%zu bytes (n = %" PRIu32
		         " float32)", want, a);
		break;
	case BIN_U32_N:
		snprintf(what, sizeof what, "%zu bytes (n = %" PRIu32
		         " uint32)", want, a);
		break;
	case BIN_U32_ANY:
		snprintf(what, sizeof what, "uint32 (a multiple of 4 bytes)");
		break;
	default:
		snprintf(what, sizeof what, "%zu bytes (n_cont %" PRIu32
		         " x lookahead %" PRIu32 " float32)", want, a, b);
		break;
	}
	if (!v) {
		return perr(c, pre, key, "expected a bin of %s, got nothing "
		            "(missing)", what);
	}
	if (v->type != MSGPACK_OBJECT_BIN)
		return perr(c, pre, key, "expected a bin of %s, got %s", what,
		            describe(v, d, sizeof d));
	return perr(c, pre, key, "expected a bin of %s, got %" PRIu32 " bytes",
	            what, v->via.bin.size);
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

/* The first string key a map gives twice, or NULL. Maps of records and
 * models are small; provenance may hold TRACE_MAX_PROV entries, so larger
 * maps are checked by sorting. @return 0 or -ENOMEM. */
static int cmp_key_obj(const void *a, const void *b)
{
	const msgpack_object *const *x = a, *const *y = b;
	const uint32_t lx = (*x)->via.str.size, ly = (*y)->via.str.size;
	const int c = memcmp((*x)->via.str.ptr, (*y)->via.str.ptr,
	                     lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

static bool key_eq(const msgpack_object *a, const msgpack_object *b)
{
	return a->via.str.size == b->via.str.size &&
	       memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

static int map_find_dup(const msgpack_object *map, const msgpack_object **dup)
{
	const msgpack_object_kv *kv = map->via.map.ptr;
	const uint32_t n = map->via.map.size;
	const msgpack_object **keys;
	size_t nk = 0;

	*dup = NULL;
	if (n <= 16) {
		for (uint32_t i = 1; i < n; i++) {
			if (kv[i].key.type != MSGPACK_OBJECT_STR)
				continue;
			for (uint32_t j = 0; j < i; j++)
				if (kv[j].key.type == MSGPACK_OBJECT_STR &&
				    key_eq(&kv[i].key, &kv[j].key)) {
					*dup = &kv[i].key;
					return 0;
				}
		}
		return 0;
	}
	keys = malloc(n * sizeof *keys);
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (kv[i].key.type == MSGPACK_OBJECT_STR)
			keys[nk++] = &kv[i].key;
	qsort(keys, nk, sizeof *keys, cmp_key_obj);
	for (size_t i = 1; i < nk && !*dup; i++)
		if (key_eq(keys[i], keys[i - 1]))
			*dup = keys[i];
	free(keys);
	return 0;
}

/* Refuse a map that gives a key twice: "field 'PRE KEY': duplicate key". */
static int check_unique(const struct pctx *c, const char *pre,
                        const msgpack_object *map)
{
	const msgpack_object *dup;
	char e[200];

	if (map_find_dup(map, &dup) < 0) {
		util_set_err(c->err, c->errlen, "%s: offset %" PRIu64 ": out of "
		        "memory checking a map of %" PRIu32 " entries", c->path,
		        c->off, map->via.map.size);
		return -ENOMEM;
	}
	if (!dup)
		return 0;
	return perr(c, pre, escape(dup->via.str.ptr, dup->via.str.size, e,
	                           sizeof e),
	            "duplicate key (the map gives it twice)");
}

struct trace_reader {
	char *path;
	int fd;
	bool eof;           /* read() returned 0 */
	bool done;          /* end marker seen and checked */
	bool size_known;    /* a regular file: file_size is its length */
	uint64_t file_size;
	/* bytes read and not yet consumed: buf[start, end) starts at file
	 * offset `consumed`; msgpack-c only ever sees a complete object */
	unsigned char *buf;
	size_t cap, start, end;
	msgpack_unpacked res;
	uint64_t consumed;  /* file bytes of all completed objects */
	uint64_t obj_off;   /* start of the current object */
	uint64_t first_seq_off;
	uint64_t n_seq, n_tok;     /* counted so far */
	uint64_t end_seq, end_tok; /* from the end marker */
	struct trace_header h;
	struct trace_idset ids;          /* sequence id -> offset of its record */
	/* SHA-256 of every byte read, on the first pass only */
	struct sha256_ctx sha;
	bool hashing;
	char sha_hex[65];          /* "" until the first pass reached EOF */

	float *entropy, *top1, *accept, *cont_entropy;
	uint32_t *tokens, *cont_pos;
	int32_t *cont_index;
	size_t cap_entropy, cap_top1, cap_accept, cap_tokens, cap_index;
	size_t cap_cont_pos, cap_cont_entropy;
};

/* ---- framing: the extent of the next object, before msgpack-c sees it */

enum scan_status { SCAN_DONE, SCAN_MORE, SCAN_BAD, SCAN_CLAIM };

struct scan {
	/* in: bytes from p[0] to the end of the file, or UINT64_MAX when not
	 * known yet (a stream not at its end) */
	uint64_t limit;
	/* out */
	size_t size;        /* SCAN_DONE: bytes of the object */
	size_t need;        /* SCAN_MORE: at least this many bytes */
	size_t at;          /* SCAN_BAD, SCAN_CLAIM: offset in p */
	const char *what;   /* SCAN_BAD: why; SCAN_CLAIM: "map", "bin", ... */
	uint64_t claim;     /* SCAN_CLAIM: entries, elements or bytes claimed */
	uint64_t left;      /* SCAN_CLAIM: bytes after the header */
};

static uint64_t be_uint(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Walk the msgpack object at p[0..n) without allocating: headers only,
 * payloads skipped by length, nesting on a fixed stack. A header that
 * claims more bytes than the file has left is reported (SCAN_CLAIM) when
 * the claim is at least TRACE_CHUNK bytes, what the reader would buffer
 * or allocate for it; a smaller shortfall is an ordinary truncation
 * (SCAN_MORE at the end of the file). */
static enum scan_status scan_object(const unsigned char *p, size_t n,
                                    struct scan *sc)
{
	uint64_t stack[TRACE_MAX_DEPTH];
	uint64_t pending = 1;  /* objects still to walk at this level */
	int depth = 0;
	size_t pos = 0;

	for (;;) {
		size_t hl;           /* header length */
		uint64_t body = 0;   /* payload bytes after the header */
		uint64_t items = 0;  /* child objects (arrays, maps) */
		const char *kind = NULL;
		unsigned b;

		if (pos >= n) {
			sc->need = pos + 1;
			return SCAN_MORE;
		}
		b = p[pos];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			hl = 1;
		} else if (b <= 0x8f) {
			hl = 1, items = 2 * (uint64_t)(b & 0x0f), kind = "map";
		} else if (b <= 0x9f) {
			hl = 1, items = b & 0x0f, kind = "array";
		} else if (b <= 0xbf) {
			hl = 1, body = b & 0x1f, kind = "str";
		} else {
			static const struct { unsigned char hl, len, fixed;
			                      const char *kind; } t[32] = {
				[0x04] = { 2, 1, 0, "bin" }, [0x05] = { 3, 2, 0, "bin" },
				[0x06] = { 5, 4, 0, "bin" }, [0x07] = { 3, 1, 0, "ext" },
				[0x08] = { 4, 2, 0, "ext" }, [0x09] = { 6, 4, 0, "ext" },
				[0x0a] = { 1, 0, 4, NULL }, [0x0b] = { 1, 0, 8, NULL },
				[0x0c] = { 1, 0, 1, NULL }, [0x0d] = { 1, 0, 2, NULL },
				[0x0e] = { 1, 0, 4, NULL }, [0x0f] = { 1, 0, 8, NULL },
				[0x10] = { 1, 0, 1, NULL }, [0x11] = { 1, 0, 2, NULL },
				[0x12] = { 1, 0, 4, NULL }, [0x13] = { 1, 0, 8, NULL },
				[0x14] = { 1, 0, 2, NULL }, [0x15] = { 1, 0, 3, NULL },
				[0x16] = { 1, 0, 5, NULL }, [0x17] = { 1, 0, 9, NULL },
				[0x18] = { 1, 0, 17, NULL }, [0x19] = { 2, 1, 0, "str" },
				[0x1a] = { 3, 2, 0, "str" }, [0x1b] = { 5, 4, 0, "str" },
				[0x1c] = { 3, 2, 0, "array" },
				[0x1d] = { 5, 4, 0, "array" },
				[0x1e] = { 3, 2, 0, "map" }, [0x1f] = { 5, 4, 0, "map" },
			};
			const unsigned x = b - 0xc0;

			if (t[x].hl == 0) {  /* 0xc1: never used */
				sc->at = pos;
				sc->what = "byte 0xc1, which msgpack never uses";
				return SCAN_BAD;
			}
			hl = t[x].hl;
			body = t[x].fixed;
			kind = t[x].kind;
			if (t[x].len) {
				if (pos + hl > n) {
					sc->need = pos + hl;
					return SCAN_MORE;
				}
				body = be_uint(p + pos + 1, t[x].len);
				if (strcmp(kind, "array") == 0)
					items = body, body = 0;
				else if (strcmp(kind, "map") == 0)
					items = 2 * body, body = 0;
			}
		}
		if (pos + hl > n) {
			sc->need = pos + hl;
			return SCAN_MORE;
		}
		/* every child takes at least one byte */
		if (kind && (body | items) >= TRACE_CHUNK &&
		    sc->limit != UINT64_MAX &&
		    body + items > (sc->limit > pos + hl ? sc->limit - pos - hl
		                                         : 0)) {
			sc->at = pos;
			sc->what = kind;
			sc->claim = items ? (kind[0] == 'm' ? items / 2 : items)
			                  : body;
			sc->left = sc->limit > pos + hl ? sc->limit - pos - hl : 0;
			return SCAN_CLAIM;
		}
		if (items) {
			if (depth == TRACE_MAX_DEPTH) {
				sc->at = pos;
				sc->what = "nesting deeper than 32 levels";
				return SCAN_BAD;
			}
			stack[depth++] = pending - 1;
			pending = items;
			pos += hl;
			continue;
		}
		if (body > n - pos - hl) {
			sc->need = pos + hl + body < (uint64_t)SIZE_MAX
			           ? (size_t)(pos + hl + body) : SIZE_MAX;
			return SCAN_MORE;
		}
		pos += hl + (size_t)body;
		pending--;
		while (pending == 0) {
			if (depth == 0) {
				sc->size = pos;
				return SCAN_DONE;
			}
			pending = stack[--depth];
		}
	}
}

/* Read more bytes after buf[end]; at least up to `need` bytes of buffered
 * data when the file has them. @return 0 (r->eof set at the end of the
 * file) or -errno. */
static int rd_fill(struct trace_reader *r, size_t need, char *err,
                   size_t errlen)
{
	size_t want;
	ssize_t got;

	if (r->start > 0) {  /* keep only the unconsumed bytes */
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	/* grow by what is needed, at most doubling per read: the buffer only
	 * ever holds bytes that were actually read */
	want = r->end + TRACE_CHUNK;
	if (need > want)
		want = need < 2 * r->cap ? need : 2 * r->cap;
	if (want > r->cap) {
		unsigned char *nb = realloc(r->buf, want);

		if (!nb) {
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": out of "
			        "memory buffering %zu bytes of the record starting "
			        "here", r->path, r->consumed, want);
			return -ENOMEM;
		}
		r->buf = nb;
		r->cap = want;
	}
	do {
		got = read(r->fd, r->buf + r->end, r->cap - r->end);
	} while (got < 0 && errno == EINTR);
	if (got < 0) {
		const int e = errno;

		util_set_err(err, errlen, "%s: read: %s", r->path, strerror(e));
		return -e;
	}
	if (got == 0) {
		r->eof = true;
		if (r->hashing) {
			unsigned char d[32];

			sha256_final(&r->sha, d);
			for (int i = 0; i < 32; i++)
				snprintf(r->sha_hex + 2 * i, 3, "%02x", d[i]);
			r->hashing = false;
		}
		return 0;
	}
	if (r->hashing)
		sha256_update(&r->sha, r->buf + r->end, (size_t)got);
	r->end += (size_t)got;
	return 0;
}

/* Next top-level object into r->res.
 * @return 1 object, 0 clean end of file (no partial object), < 0 error. */
static int rd_object(struct trace_reader *r, char *err, size_t errlen)
{
	size_t need = 0;

	for (;;) {
		const size_t avail = r->end - r->start;
		struct scan sc = { 0 };
		size_t off = 0;
		int ret;

		sc.limit = r->eof ? avail
		         : r->size_known && r->file_size >= r->consumed
		           ? r->file_size - r->consumed : UINT64_MAX;
		if (sc.limit < avail)  /* the file grew since it was opened */
			sc.limit = r->eof ? avail : UINT64_MAX;
		switch (avail ? scan_object(r->buf + r->start, avail, &sc)
		              : SCAN_MORE) {
		case SCAN_DONE:
			if (msgpack_unpack_next(&r->res, (const char *)r->buf +
			                        r->start, sc.size, &off) !=
			        MSGPACK_UNPACK_SUCCESS || off != sc.size) {
				util_set_err(err, errlen, "%s: offset %" PRIu64 ": "
				        "malformed msgpack in the object starting "
				        "here", r->path, r->consumed);
				return -EINVAL;
			}
			r->obj_off = r->consumed;
			r->consumed += sc.size;
			r->start += sc.size;
			return 1;
		case SCAN_BAD:
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": malformed "
			        "msgpack: %s at byte %" PRIu64, r->path,
			        r->consumed, sc.what, r->consumed + sc.at);
			return -EINVAL;
		case SCAN_CLAIM: {
			const bool bytes = sc.what[0] == 's' || sc.what[0] == 'b' ||
			                   sc.what[0] == 'e';

			util_set_err(err, errlen, "%s: offset %" PRIu64 ": the %s at "
			        "byte %" PRIu64 " claims %" PRIu64 " %s, but only "
			        "%" PRIu64 " bytes follow its header in the file",
			        r->path, r->consumed, sc.what, r->consumed + sc.at,
			        sc.claim, bytes ? "bytes" : sc.what[0] == 'm'
			                  ? "entries" : "elements", sc.left);
			return -EINVAL;
		}
		case SCAN_MORE:
			need = sc.need;
			break;
		}
		if (r->eof) {
			if (avail == 0)
				return 0;
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": truncated: the "
			        "record starting here is incomplete (file ends "
			        "%zu bytes into it)", r->path, r->consumed, avail);
			return -EINVAL;
		}
		ret = rd_fill(r, need, err, errlen);
		if (ret < 0)
			return ret;
	}
}

/* The current object as a record map; *type set to its "type" string. */
static int rd_record(struct trace_reader *r, const msgpack_object **map,
                     const msgpack_object **type, char *err, size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	const msgpack_object *o = &r->res.data;
	char d[256];

	if (o->type != MSGPACK_OBJECT_MAP) {
		util_set_err(err, errlen, "%s: offset %" PRIu64 ": expected a record "
		        "map with a \"type\" key, got %s", r->path, r->obj_off,
		        describe(o, d, sizeof d));
		return -EINVAL;
	}
	*type = map_find(o, "type");
	if (!*type)
		return perr(&c, "", "type", "expected a string naming the record "
		            "type, got nothing (missing)");
	if ((*type)->type != MSGPACK_OBJECT_STR)
		return perr(&c, "", "type", "expected a string naming the record "
		            "type, got %s", describe(*type, d, sizeof d));
	*map = o;
	return 0;
}

static int parse_model(const struct pctx *c, const msgpack_object *models,
                       const char *which, struct trace_model *m)
{
	const msgpack_object *mo, *ops;
	char pre[64], opre[96], kind[32], d[256];
	uint64_t wb;
	int ret;
	const struct { const char *key; uint32_t *dst; } dims[] = {
		{ "dim", &m->dim }, { "hidden_dim", &m->hidden_dim },
		{ "n_layers", &m->n_layers }, { "n_heads", &m->n_heads },
		{ "n_kv_heads", &m->n_kv_heads }, { "vocab_size", &m->vocab_size },
		{ "seq_len", &m->seq_len }, { "weight_bits", &m->weight_bits },
	};

	snprintf(pre, sizeof pre, "models.");
	ret = need(c, pre, models, which, "a model map", &mo);
	if (ret < 0)
		return ret;
	if (mo->type != MSGPACK_OBJECT_MAP)
		return perr(c, pre, which, "expected a model map, got %s",
		            describe(mo, d, sizeof d));
	snprintf(pre, sizeof pre, "models.%s.", which);
	ret = check_unique(c, pre, mo);
	if (ret == 0)
		ret = get_str(c, pre, mo, "name", m->name, sizeof m->name);
	for (size_t i = 0; ret == 0 && i < sizeof dims / sizeof dims[0]; i++)
		ret = get_u32(c, pre, mo, dims[i].key, dims[i].dst);
	if (ret == 0)
		ret = get_u64(c, pre, mo, "weight_bytes", UINT64_MAX, &wb);
	if (ret < 0)
		return ret;
	m->weight_bytes = wb;
	ret = need(c, pre, mo, "ops", "an array of op maps", &ops);
	if (ret < 0)
		return ret;
	if (ops->type != MSGPACK_OBJECT_ARRAY)
		return perr(c, pre, "ops", "expected an array of op maps, got %s",
		            describe(ops, d, sizeof d));
	if (ops->via.array.size > TRACE_MAX_OPS)
		return perr(c, pre, "ops", "expected at most %u ops, got %" PRIu32,
		            TRACE_MAX_OPS, ops->via.array.size);
	m->n_ops = 0;
	m->ops = calloc(ops->via.array.size ? ops->via.array.size : 1,
	                sizeof *m->ops);
	if (!m->ops) {
		util_set_err(c->err, c->errlen, "%s: offset %" PRIu64 ": out of "
		        "memory for %" PRIu32 " ops of models.%s", c->path, c->off,
		        ops->via.array.size, which);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ops->via.array.size; i++) {
		const msgpack_object *oo = &ops->via.array.ptr[i];
		struct trace_op *op = &m->ops[i];
		const msgpack_object *sc;
		int k;
		const struct { const char *key; uint32_t *dst; } od[] = {
			{ "k", &op->k }, { "n", &op->n }, { "heads", &op->heads },
			{ "kv_heads", &op->kv_heads }, { "head_dim", &op->head_dim },
			{ "repeat", &op->repeat },
		};

		snprintf(opre, sizeof opre, "models.%s.ops[%" PRIu32 "]", which, i);
		if (oo->type != MSGPACK_OBJECT_MAP)
			return perr(c, opre, "", "expected an op map, got %s",
			            describe(oo, d, sizeof d));
		snprintf(opre, sizeof opre, "models.%s.ops[%" PRIu32 "].", which,
		         i);
		ret = check_unique(c, opre, oo);
		if (ret == 0)
			ret = get_str(c, opre, oo, "name", op->name,
			              sizeof op->name);
		if (ret == 0)
			ret = get_str(c, opre, oo, "kind", kind, sizeof kind);
		if (ret < 0)
			return ret;
		k = trace_op_kind_parse(kind);
		if (k < 0)
			return perr(c, opre, "kind", "expected one of gemm, attention, "
			            "nonlinear, norm, elementwise, embed, got \"%s\"",
			            escape(kind, strlen(kind), d, sizeof d));
		op->kind = (enum trace_op_kind)k;
		for (size_t j = 0; ret == 0 && j < sizeof od / sizeof od[0]; j++)
			ret = get_u32(c, opre, oo, od[j].key, od[j].dst);
		if (ret == 0)
			ret = need(c, opre, oo, "scales", "\"M\" or \"ML\"", &sc);
		if (ret < 0)
			return ret;
		if (!str_eq(sc, kind_scales(op->kind)))
			return perr(c, opre, "scales", "expected \"%s\" for kind '%s', "
			            "got %s", kind_scales(op->kind), kind,
			            describe(sc, d, sizeof d));
		m->n_ops = i + 1;
	}
	ret = trace_model_check(m, which, c->err, c->errlen);
	if (ret < 0)
		prefix_loc(c);
	return ret;
}

static int parse_header(struct trace_reader *r, const msgpack_object *o,
                        char *err, size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	struct trace_header *h = &r->h;
	const msgpack_object *v, *prov, *models;
	char buf[64], d[256];
	uint64_t u;
	int ret;

	/* magic and version first: a newer file may differ in the rest */
	ret = check_unique(&c, "", o);
	if (ret == 0)
		ret = need(&c, "", o, "magic", "\"" TRACE_MAGIC "\"", &v);
	if (ret < 0)
		return ret;
	if (!str_eq(v, TRACE_MAGIC))
		return perr(&c, "", "magic", "expected \"" TRACE_MAGIC "\", got %s",
		            describe(v, d, sizeof d));
	ret = get_u64(&c, "", o, "version", UINT64_MAX, &u);
	if (ret < 0)
		return ret;
	if (u != TRACE_FORMAT_VERSION)
		return perr(&c, "", "version", "expected %d (the only version this "
		            "reader supports), got %" PRIu64, TRACE_FORMAT_VERSION,
		            u);
	h->version = (uint32_t)u;
	ret = get_u32(&c, "", o, "lookahead", &h->lookahead);
	if (ret == 0)
		ret = get_str(&c, "", o, "sampling", buf, sizeof buf);
	if (ret < 0)
		return ret;
	if (strcmp(buf, "greedy") == 0)
		h->sampled = 0;
	else if (strcmp(buf, "sampled") == 0)
		h->sampled = 1;
	else
		return perr(&c, "", "sampling", "expected \"greedy\" or "
		            "\"sampled\", got \"%s\"",
		            escape(buf, strlen(buf), d, sizeof d));
	ret = get_f64(&c, "", o, "temperature", &h->temperature);
	if (ret == 0)
		ret = get_f64(&c, "", o, "top_p", &h->top_p);
	if (ret == 0)
		ret = get_u64(&c, "", o, "seed", UINT64_MAX, &h->seed);
	if (ret == 0)
		ret = get_bool(&c, "", o, "synthetic", &h->synthetic);
	if (ret == 0)
		ret = need(&c, "", o, "provenance", "a map of strings", &prov);
	if (ret < 0)
		return ret;
	if (prov->type != MSGPACK_OBJECT_MAP)
		return perr(&c, "", "provenance", "expected a map of strings, "
		            "got %s", describe(prov, d, sizeof d));
	if (prov->via.map.size > TRACE_MAX_PROV)
		return perr(&c, "", "provenance", "expected at most %u entries, "
		            "got %" PRIu32, TRACE_MAX_PROV, prov->via.map.size);
	ret = check_unique(&c, "provenance.", prov);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < prov->via.map.size; i++) {
		const msgpack_object_kv *kv = &prov->via.map.ptr[i];
		char *k, *val;

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type != MSGPACK_OBJECT_STR) {
			snprintf(buf, sizeof buf, "[%" PRIu32 "]", i);
			return perr(&c, "provenance", buf, "expected a string key "
			            "and string value, got %s",
			            describe(kv->key.type != MSGPACK_OBJECT_STR ?
			                     &kv->key : &kv->val, d, sizeof d));
		}
		if (memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size) ||
		    memchr(kv->val.via.str.ptr, '\0', kv->val.via.str.size)) {
			snprintf(buf, sizeof buf, "[%" PRIu32 "]", i);
			return perr(&c, "provenance", buf, "expected strings "
			            "without NUL bytes, got one with");
		}
		k = alloc_str(&kv->key);
		val = alloc_str(&kv->val);
		/* keys are unique (checked above): append, no lookup */
		if (!k || !val || trace_header_append_prov(h, k, val) < 0) {
			free(k);
			free(val);
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": out of "
			        "memory reading provenance entry %" PRIu32,
			        r->path, r->obj_off, i);
			return -ENOMEM;
		}
		free(k);
		free(val);
	}
	ret = need(&c, "", o, "models", "a map with draft and target", &models);
	if (ret < 0)
		return ret;
	if (models->type != MSGPACK_OBJECT_MAP)
		return perr(&c, "", "models", "expected a map with draft and "
		            "target, got %s", describe(models, d, sizeof d));
	ret = check_unique(&c, "models.", models);
	if (ret == 0)
		ret = parse_model(&c, models, "draft", &h->draft);
	if (ret == 0)
		ret = parse_model(&c, models, "target", &h->target);
	if (ret == 0) {
		ret = trace_header_check(h, err, errlen);
		if (ret < 0)
			prefix_loc(&c);
	}
	return ret;
}

static void copy_le32(void *dst, const msgpack_object_bin *b)
{
	if (b->size == 0)
		return;
	memcpy(dst, b->ptr, b->size);
	if (TRACE_BIG_ENDIAN)
		swap32_array(dst, b->size / 4);
}

static int parse_seq(struct trace_reader *r, const msgpack_object *o,
                     struct trace_seq *s, char *err, size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	const uint32_t K = r->h.lookahead;
	const msgpack_object_bin *ent, *top1, *acc, *tok, *cpos, *cent;
	uint32_t id = 0, prompt_len = 0, n = 0, n_cont;
	int ret;

	ret = check_unique(&c, "", o);
	if (ret == 0)
		ret = get_u32(&c, "", o, "id", &id);
	if (ret == 0)
		ret = get_u32(&c, "", o, "prompt_len", &prompt_len);
	if (ret == 0)
		ret = get_u32(&c, "", o, "n", &n);
	if (ret < 0)
		return ret;
	ret = get_bin(&c, "", o, "entropy", (size_t)n * 4, BIN_F32_N, n, 0,
	              false, &ent);
	if (ret == 0)
		ret = get_bin(&c, "", o, "top1", (size_t)n * 4, BIN_F32_N, n, 0,
		              false, &top1);
	if (ret == 0)
		ret = get_bin(&c, "", o, "accept", (size_t)n * 4, BIN_F32_N, n, 0,
		              false, &acc);
	if (ret == 0)
		ret = get_bin(&c, "", o, "tokens", (size_t)n * 4, BIN_U32_N, n, 0,
		              true, &tok);
	if (ret == 0)
		ret = get_bin(&c, "", o, "cont_pos", 0, BIN_U32_ANY, 0, 0, false,
		              &cpos);
	if (ret < 0)
		return ret;
	n_cont = cpos->size / 4;
	if (n_cont > n)
		return perr(&c, "", "cont_pos", "expected at most n = %" PRIu32
		            " positions, got %" PRIu32, n, n_cont);
	ret = get_bin(&c, "", o, "cont_entropy", (size_t)n_cont * K * 4,
	              BIN_F32_CONT, n_cont, K, false, &cent);
	if (ret < 0)
		return ret;

	if (grow((void **)&r->entropy, &r->cap_entropy, n, sizeof(float)) ||
	    grow((void **)&r->top1, &r->cap_top1, n, sizeof(float)) ||
	    grow((void **)&r->accept, &r->cap_accept, n, sizeof(float)) ||
	    grow((void **)&r->cont_index, &r->cap_index, n, sizeof(int32_t)) ||
	    (tok && grow((void **)&r->tokens, &r->cap_tokens, n,
	                 sizeof(uint32_t))) ||
	    grow((void **)&r->cont_pos, &r->cap_cont_pos, n_cont ? n_cont : 1,
	         sizeof(uint32_t)) ||
	    grow((void **)&r->cont_entropy, &r->cap_cont_entropy,
	         n_cont ? (size_t)n_cont * K : 1, sizeof(float))) {
		util_set_err(err, errlen, "%s: offset %" PRIu64 ": out of memory for a "
		        "sequence of %" PRIu32 " tokens", r->path, r->obj_off, n);
		return -ENOMEM;
	}
	copy_le32(r->entropy, ent);
	copy_le32(r->top1, top1);
	copy_le32(r->accept, acc);
	if (tok)
		copy_le32(r->tokens, tok);
	copy_le32(r->cont_pos, cpos);
	copy_le32(r->cont_entropy, cent);

	memset(s, 0, sizeof *s);
	s->id = id;
	s->prompt_len = prompt_len;
	s->n = n;
	s->entropy = r->entropy;
	s->top1 = r->top1;
	s->accept = r->accept;
	s->tokens = tok ? r->tokens : NULL;
	s->n_cont = n_cont;
	s->cont_pos = r->cont_pos;
	s->cont_entropy = r->cont_entropy;
	ret = trace_seq_check(&r->h, s, err, errlen);
	if (ret < 0) {
		prefix_loc(&c);
		memset(s, 0, sizeof *s);
		return ret;
	}
	{
		uint64_t first;

		ret = trace_idset_add(&r->ids, id, r->obj_off, &first);
		if (ret != 0) {
			memset(s, 0, sizeof *s);
			if (ret < 0) {
				util_set_err(err, errlen, "%s: offset %" PRIu64 ": out "
				        "of memory remembering sequence ids",
				        r->path, r->obj_off);
				return ret;
			}
			return perr(&c, "", "id", "duplicate sequence id %" PRIu32
			            " (also the sequence at offset %" PRIu64 ")", id,
			            first);
		}
	}
	/* valid cont_pos: ascending and < n */
	for (uint32_t p = 0; p < n; p++)
		r->cont_index[p] = -1;
	for (uint32_t i = 0; i < n_cont; i++)
		r->cont_index[r->cont_pos[i]] = (int32_t)i;
	s->cont_index = r->cont_index;
	return 0;
}

static int parse_end(struct trace_reader *r, const msgpack_object *o,
                     char *err, size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	int ret;

	ret = check_unique(&c, "", o);
	if (ret == 0)
		ret = get_u64(&c, "", o, "n_sequences", UINT64_MAX, &r->end_seq);
	if (ret == 0)
		ret = get_u64(&c, "", o, "n_tokens", UINT64_MAX, &r->end_tok);
	if (ret < 0)
		return ret;
	if (r->end_seq != r->n_seq)
		return perr(&c, "", "n_sequences", "expected %" PRIu64
		            " (the sequences read), got %" PRIu64, r->n_seq,
		            r->end_seq);
	if (r->end_tok != r->n_tok)
		return perr(&c, "", "n_tokens", "expected %" PRIu64
		            " (the tokens read), got %" PRIu64, r->n_tok,
		            r->end_tok);
	return 0;
}

int trace_reader_open(struct trace_reader **out, const char *path,
                      char *err, size_t errlen)
{
	struct trace_reader *r = NULL;
	const msgpack_object *map, *type;
	int ret;

	if (!out || !path) {
		util_set_err(err, errlen, "trace_reader_open: NULL argument");
		return -EINVAL;
	}
	*out = NULL;
	r = calloc(1, sizeof *r);
	if (r)
		r->fd = -1;
	if (!r || !(r->path = dup_str(path))) {
		util_set_err(err, errlen, "%s: out of memory", path);
		ret = -ENOMEM;
		goto error;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		ret = -errno;
		util_set_err(err, errlen, "%s: %s", path, strerror(-ret));
		goto error;
	}
	{
		struct stat st;

		if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) {
			r->size_known = true;
			r->file_size = (uint64_t)st.st_size;
		}
	}
	msgpack_unpacked_init(&r->res);
	sha256_init(&r->sha);
	r->hashing = true;
	ret = rd_object(r, err, errlen);
	if (ret == 0) {
		util_set_err(err, errlen, "%s: offset 0: truncated: empty file, "
		        "expected a header record", path);
		ret = -EINVAL;
	}
	if (ret < 0)
		goto error;
	ret = rd_record(r, &map, &type, err, errlen);
	if (ret < 0)
		goto error;
	if (!str_eq(type, "header")) {
		const struct pctx c = { r->path, r->obj_off, err, errlen };
		char d[256];

		ret = perr(&c, "", "type", "expected \"header\" as the first "
		           "record, got %s", describe(type, d, sizeof d));
		goto error;
	}
	ret = parse_header(r, map, err, errlen);
	if (ret < 0)
		goto error;
	r->first_seq_off = r->consumed;
	*out = r;
	return 0;
error:
	trace_reader_close(&r);
	return ret;
}

const struct trace_header *trace_reader_header(const struct trace_reader *r)
{
	return &r->h;
}

int trace_reader_next(struct trace_reader *r, struct trace_seq *seq,
                      char *err, size_t errlen)
{
	const msgpack_object *map, *type;
	int ret;

	if (!r || !seq) {
		util_set_err(err, errlen, "trace_reader_next: NULL argument");
		return -EINVAL;
	}
	if (r->done)
		return 0;
	for (;;) {
		ret = rd_object(r, err, errlen);
		if (ret == 0) {
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": truncated: "
			        "file ends without an end marker (after %" PRIu64
			        " sequences)", r->path, r->consumed, r->n_seq);
			return -EINVAL;
		}
		if (ret < 0)
			return ret;
		ret = rd_record(r, &map, &type, err, errlen);
		if (ret < 0)
			return ret;
		if (str_eq(type, "seq")) {
			ret = parse_seq(r, map, seq, err, errlen);
			if (ret < 0)
				return ret;
			r->n_seq++;
			r->n_tok += seq->n;
			return 1;
		}
		if (str_eq(type, "end"))
			break;
		if (str_eq(type, "header")) {
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": field 'type': "
			        "expected \"seq\" or \"end\", got a second \"header\"",
			        r->path, r->obj_off);
			return -EINVAL;
		}
		/* unknown record types are skipped (forward compatible) */
	}
	ret = parse_end(r, map, err, errlen);
	if (ret < 0)
		return ret;
	{
		const uint64_t end_off = r->obj_off;

		ret = rd_object(r, err, errlen);
		if (ret > 0) {
			util_set_err(err, errlen, "%s: offset %" PRIu64 ": trailing data "
			        "after the end marker", r->path, r->obj_off);
			ret = -EINVAL;
		}
		if (ret < 0)
			return ret;
		r->obj_off = end_off;
	}
	r->done = true;
	memset(seq, 0, sizeof *seq);
	return 0;
}

void trace_reader_totals(const struct trace_reader *r, uint64_t *n_seq,
                         uint64_t *n_tokens)
{
	if (n_seq)
		*n_seq = r->end_seq;
	if (n_tokens)
		*n_tokens = r->end_tok;
}

uint64_t trace_reader_offset(const struct trace_reader *r)
{
	return r->obj_off;
}

int trace_reader_rewind(struct trace_reader *r, char *err, size_t errlen)
{
	if (!r) {
		util_set_err(err, errlen, "trace_reader_rewind: NULL argument");
		return -EINVAL;
	}
	if (lseek(r->fd, (off_t)r->first_seq_off, SEEK_SET) < 0) {
		const int e = errno;

		if (e == ESPIPE)
			util_set_err(err, errlen, "%s: cannot read the trace again "
			        "(%s): a pipe or FIFO can be read only once; write "
			        "the trace to a file first", r->path, strerror(e));
		else
			util_set_err(err, errlen, "%s: seek: %s", r->path,
			        strerror(e));
		return -e;
	}
	msgpack_unpacked_destroy(&r->res);
	msgpack_unpacked_init(&r->res);
	r->start = r->end = 0;
	r->hashing = false;  /* the first pass hashed the file, or failed */
	r->consumed = r->first_seq_off;
	r->obj_off = r->first_seq_off;
	r->eof = false;
	r->done = false;
	r->n_seq = r->n_tok = 0;
	r->end_seq = r->end_tok = 0;
	trace_idset_clear(&r->ids);
	return 0;
}

int trace_reader_sha256(const struct trace_reader *r, char hex[65])
{
	if (!r->sha_hex[0]) {
		hex[0] = '\0';
		return -EAGAIN;
	}
	memcpy(hex, r->sha_hex, 65);
	return 0;
}

void trace_reader_close(struct trace_reader **rp)
{
	struct trace_reader *r;

	if (!rp || !*rp)
		return;
	r = *rp;
	msgpack_unpacked_destroy(&r->res);
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	trace_idset_clear(&r->ids);
	trace_header_clear(&r->h);
	free(r->entropy);
	free(r->top1);
	free(r->accept);
	free(r->tokens);
	free(r->cont_pos);
	free(r->cont_entropy);
	free(r->cont_index);
	free(r->path);
	free(r);
	*rp = NULL;
}

/* ------------------------------------------------------------------------ */
/* writer                                                                    */

struct trace_writer {
	struct outfile *out;       /* -o semantics: outfile.h */
	FILE *f;
	int io_err;                /* first write errno, 0 if none */
	msgpack_packer pk;
	struct trace_header h;     /* scalars only (no ops, no provenance) */
	uint64_t n_seq, n_tok;
	struct trace_idset ids;          /* sequence id -> its ordinal */
	uint32_t *scratch;         /* byte-swap buffer on big-endian hosts */
	size_t cap_scratch;
};

static int wr_cb(void *data, const char *buf, size_t len)
{
	struct trace_writer *w = data;

	if (w->io_err)
		return -1;
	if (len && fwrite(buf, 1, len, w->f) != len) {
		w->io_err = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	const size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pk_key_str(msgpack_packer *pk, const char *k, const char *v)
{
	pk_str(pk, k);
	pk_str(pk, v);
}

static void pk_key_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	pk_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void pk_key_f64(msgpack_packer *pk, const char *k, double v)
{
	pk_str(pk, k);
	msgpack_pack_double(pk, v);
}

/* bin of count little-endian 32-bit values */
static void pk_key_le32(struct trace_writer *w, const char *k,
                        const void *src, size_t count)
{
	pk_str(&w->pk, k);
	msgpack_pack_bin(&w->pk, count * 4);
	if (count == 0)
		return;
	if (!TRACE_BIG_ENDIAN) {
		msgpack_pack_bin_body(&w->pk, src, count * 4);
		return;
	}
	if (grow((void **)&w->scratch, &w->cap_scratch, count,
	         sizeof(uint32_t)) < 0) {
		w->io_err = ENOMEM;
		return;
	}
	memcpy(w->scratch, src, count * 4);
	swap32_array(w->scratch, count);
	msgpack_pack_bin_body(&w->pk, w->scratch, count * 4);
}

static void pk_model(msgpack_packer *pk, const struct trace_model *m)
{
	msgpack_pack_map(pk, 11);
	pk_key_str(pk, "name", m->name);
	pk_key_u64(pk, "dim", m->dim);
	pk_key_u64(pk, "hidden_dim", m->hidden_dim);
	pk_key_u64(pk, "n_layers", m->n_layers);
	pk_key_u64(pk, "n_heads", m->n_heads);
	pk_key_u64(pk, "n_kv_heads", m->n_kv_heads);
	pk_key_u64(pk, "vocab_size", m->vocab_size);
	pk_key_u64(pk, "seq_len", m->seq_len);
	pk_key_u64(pk, "weight_bits", m->weight_bits);
	pk_key_u64(pk, "weight_bytes", m->weight_bytes);
	pk_str(pk, "ops");
	msgpack_pack_array(pk, m->n_ops);
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];

		msgpack_pack_map(pk, 9);
		pk_key_str(pk, "name", op->name);
		pk_key_str(pk, "kind", kind_names[op->kind]);
		pk_key_u64(pk, "k", op->k);
		pk_key_u64(pk, "n", op->n);
		pk_key_u64(pk, "heads", op->heads);
		pk_key_u64(pk, "kv_heads", op->kv_heads);
		pk_key_u64(pk, "head_dim", op->head_dim);
		pk_key_u64(pk, "repeat", op->repeat);
		pk_key_str(pk, "scales", kind_scales(op->kind));
	}
}

static int wr_status(struct trace_writer *w, char *err, size_t errlen)
{
	if (w->io_err == 0 && ferror(w->f))
		w->io_err = EIO;
	if (w->io_err) {
		util_set_err(err, errlen, "%s: write: %s", outfile_path(w->out),
		        strerror(w->io_err));
		return -w->io_err;
	}
	return 0;
}

int trace_writer_open(struct trace_writer **out, const char *path,
                      const struct trace_header *h, char *err, size_t errlen)
{
	struct trace_writer *w = NULL;
	msgpack_packer *pk;
	int ret;

	if (!out || !path || !h) {
		util_set_err(err, errlen, "trace_writer_open: NULL argument");
		return -EINVAL;
	}
	*out = NULL;
	ret = trace_header_check(h, err, errlen);
	if (ret < 0) {
		char pre[512];

		snprintf(pre, sizeof pre, "%s: header: ", path);
		prefix_err(err, errlen, pre);
		return ret;
	}
	w = calloc(1, sizeof *w);
	if (!w) {
		util_set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	ret = outfile_open(&w->out, path, err, errlen);
	if (ret < 0) {
		free(w);
		return ret;
	}
	w->f = outfile_stream(w->out);
	w->h = *h;
	memset(&w->h.draft, 0, sizeof w->h.draft);
	memset(&w->h.target, 0, sizeof w->h.target);
	w->h.target.seq_len = h->target.seq_len;  /* trace_seq_check uses it */
	w->h.n_prov = 0;
	w->h.prov = NULL;
	w->h.version = TRACE_FORMAT_VERSION;

	pk = &w->pk;
	msgpack_packer_init(pk, w, wr_cb);
	msgpack_pack_map(pk, 11);
	pk_key_str(pk, "type", "header");
	pk_key_str(pk, "magic", TRACE_MAGIC);
	pk_key_u64(pk, "version", TRACE_FORMAT_VERSION);
	pk_key_u64(pk, "lookahead", h->lookahead);
	pk_key_str(pk, "sampling", h->sampled ? "sampled" : "greedy");
	pk_key_f64(pk, "temperature", h->temperature);
	pk_key_f64(pk, "top_p", h->top_p);
	pk_key_u64(pk, "seed", h->seed);
	pk_str(pk, "synthetic");
	if (h->synthetic)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	pk_str(pk, "provenance");
	msgpack_pack_map(pk, h->n_prov);
	for (size_t i = 0; i < h->n_prov; i++)
		pk_key_str(pk, h->prov[i].key, h->prov[i].value);
	pk_str(pk, "models");
	msgpack_pack_map(pk, 2);
	pk_str(pk, "draft");
	pk_model(pk, &h->draft);
	pk_str(pk, "target");
	pk_model(pk, &h->target);
	ret = wr_status(w, err, errlen);
	if (ret < 0) {
		trace_writer_abort(&w);
		return ret;
	}
	*out = w;
	return 0;
}

int trace_writer_add(struct trace_writer *w, const struct trace_seq *s,
                     char *err, size_t errlen)
{
	msgpack_packer *pk;
	int ret;

	if (!w || !s) {
		util_set_err(err, errlen, "trace_writer_add: NULL argument");
		return -EINVAL;
	}
	ret = wr_status(w, err, errlen);
	if (ret < 0)
		return ret;
	ret = trace_seq_check(&w->h, s, err, errlen);
	if (ret < 0) {
		char pre[512];

		snprintf(pre, sizeof pre, "%s: ", outfile_path(w->out));
		prefix_err(err, errlen, pre);
		return ret;
	}
	{
		uint64_t first;

		ret = trace_idset_add(&w->ids, s->id, w->n_seq, &first);
		if (ret < 0) {
			util_set_err(err, errlen, "%s: out of memory remembering "
			        "sequence ids", outfile_path(w->out));
			return ret;
		}
		if (ret > 0) {
			util_set_err(err, errlen, "%s: field 'id': duplicate "
			        "sequence id %" PRIu32 " (also sequence number %"
			        PRIu64 " written)", outfile_path(w->out), s->id,
			        first + 1);
			return -EINVAL;
		}
	}
	pk = &w->pk;
	msgpack_pack_map(pk, s->tokens ? 10 : 9);
	pk_key_str(pk, "type", "seq");
	pk_key_u64(pk, "id", s->id);
	pk_key_u64(pk, "prompt_len", s->prompt_len);
	pk_key_u64(pk, "n", s->n);
	pk_key_le32(w, "entropy", s->entropy, s->n);
	pk_key_le32(w, "top1", s->top1, s->n);
	pk_key_le32(w, "accept", s->accept, s->n);
	if (s->tokens)
		pk_key_le32(w, "tokens", s->tokens, s->n);
	pk_key_le32(w, "cont_pos", s->cont_pos, s->n_cont);
	pk_key_le32(w, "cont_entropy", s->cont_entropy,
	            (size_t)s->n_cont * w->h.lookahead);
	ret = wr_status(w, err, errlen);
	if (ret < 0)
		return ret;
	w->n_seq++;
	w->n_tok += s->n;
	return 0;
}

int trace_writer_close(struct trace_writer **wp, char *err, size_t errlen)
{
	struct trace_writer *w;
	int ret;

	if (!wp || !*wp) {
		util_set_err(err, errlen, "trace_writer_close: NULL writer");
		return -EINVAL;
	}
	w = *wp;
	msgpack_pack_map(&w->pk, 3);
	pk_key_str(&w->pk, "type", "end");
	pk_key_u64(&w->pk, "n_sequences", w->n_seq);
	pk_key_u64(&w->pk, "n_tokens", w->n_tok);
	ret = wr_status(w, err, errlen);
	if (ret < 0) {
		trace_writer_abort(wp);
		return ret;
	}
	ret = outfile_commit(&w->out, err, errlen);
	trace_idset_clear(&w->ids);
	free(w->scratch);
	free(w);
	*wp = NULL;
	return ret;
}

void trace_writer_abort(struct trace_writer **wp)
{
	struct trace_writer *w;

	if (!wp || !*wp)
		return;
	w = *wp;
	outfile_abort(&w->out);
	trace_idset_clear(&w->ids);
	free(w->scratch);
	free(w);
	*wp = NULL;
}
