/* capture_api.c - the C capture API (ahasd_capture.h) on top of the trace
 * writer: a runtime hands in one position at a time; sequences are
 * buffered, checked and written with trace_writer_add(). */
#include "ahasd_capture.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "outfile.h"
#include "trace.h"
#include "util.h"

/* 1 if the struct at p, which begins with uint32_t struct_size, holds
 * member m (ahasd_capture.h, rule 2). Every field of API 1 is required, so
 * this is for the fields later versions append (API 2: the config's
 * accept_run_max .. draft_lookup, the position's accept_run). */
#define CAP_HAS(p, type, m) \
	((p)->struct_size >= offsetof(type, m) + sizeof(((const type *)0)->m))

/* The sizes of API 1's structs: the smallest struct_size accepted. */
#define MODEL_SIZE_V1 \
	(offsetof(struct ahasd_capture_model, ops) + sizeof(void *))
#define CONFIG_SIZE_V1 \
	(offsetof(struct ahasd_capture_config, target) + sizeof(void *))
#define POSITION_SIZE_V1 \
	(offsetof(struct ahasd_capture_position, cont) + sizeof(void *))

struct ahasd_capture {
	char *path;
	struct trace_header h;  /* models and provenance, owned */
	struct trace_writer *w; /* NULL until the header is written */
	int ret;                /* the first error, 0 while none */
	char msg[1024];         /* its message */
	struct trace_idset ids; /* sequence ids begun */
	uint64_t n_seq;

	/* the open sequence */
	bool open;
	uint32_t id, prompt_len, max_n;
	int tokens;      /* -1 undecided, 0 none, 1 every position */
	uint32_t n, cap; /* positions, capacity */
	float *entropy, *top1, *accept;
	uint32_t *token;
	uint32_t *run;             /* accept_runs: accept_run[] */
	uint32_t n_cont, cap_cont; /* continuation rows, capacity */
	uint32_t *cont_pos;
	float *cont; /* [cap_cont * lookahead] */
};

uint32_t ahasd_capture_api_version(void)
{
	return AHASD_CAPTURE_API_VERSION;
}

/* ---- errors ---- */

__attribute__((format(printf, 3, 4))) static int fail(struct ahasd_capture *c,
                                                      int ret, const char *fmt,
                                                      ...)
{
	va_list ap;
	int n;

	n = snprintf(c->msg, sizeof c->msg, "%s: ", c->path);
	if (n < 0 || (size_t)n >= sizeof c->msg)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(c->msg + n, sizeof c->msg - (size_t)n, fmt, ap);
	va_end(ap);
	c->ret = ret;
	return ret;
}

/* a message from a trace library call, which names the file itself */
static int fail_lib(struct ahasd_capture *c, int ret, const char *err)
{
	snprintf(c->msg, sizeof c->msg, "%s", err);
	c->ret = ret;
	return ret;
}

const char *ahasd_capture_error(const struct ahasd_capture *c)
{
	return c && c->ret ? c->msg : "";
}

/* ---- open ---- */

static int check_size(uint32_t got, size_t min, size_t max, const char *what,
                      char *err, size_t errlen)
{
	if (got >= min && got <= max)
		return 0;
	if (got > max)
		util_set_err(err, errlen,
		             "%s: struct_size %" PRIu32 " is larger "
		             "than this library's %zu: the program was built "
		             "against "
		             "a newer ahasd_capture.h (API %u here); link it "
		             "with the "
		             "library of that version",
		             what, got, max, AHASD_CAPTURE_API_VERSION);
	else
		util_set_err(err, errlen,
		             "%s: struct_size %" PRIu32 " is smaller "
		             "than API 1's %zu: set it with the _INIT macro",
		             what, got, min);
	return -EINVAL;
}

static int copy_name(char *dst, const char *src, const char *field, char *err,
                     size_t errlen)
{
	size_t len = src ? strlen(src) : 0;

	if (!src || len == 0 || len >= TRACE_NAME_MAX) {
		util_set_err(err, errlen,
		             "field '%s': expected a name of 1..%d "
		             "bytes, got %s%zu bytes",
		             field, TRACE_NAME_MAX - 1, src ? "" : "NULL, ",
		             len);
		return -EINVAL;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

/* The public model description into the trace's (ops copied). */
static int model_in(struct trace_model *m, const struct ahasd_capture_model *in,
                    const char *which, char *err, size_t errlen)
{
	char field[96];
	int ret;

	if (!in) {
		util_set_err(err, errlen,
		             "field 'models.%s': expected a model, got "
		             "NULL",
		             which);
		return -EINVAL;
	}
	snprintf(field, sizeof field, "models.%s", which);
	ret = check_size(in->struct_size, MODEL_SIZE_V1,
	                 sizeof(struct ahasd_capture_model), field, err,
	                 errlen);
	if (ret)
		return ret;
	snprintf(field, sizeof field, "models.%s.name", which);
	ret = copy_name(m->name, in->name, field, err, errlen);
	if (ret)
		return ret;
	m->dim = in->dim;
	m->hidden_dim = in->hidden_dim;
	m->n_layers = in->n_layers;
	m->n_heads = in->n_heads;
	m->n_kv_heads = in->n_kv_heads;
	m->vocab_size = in->vocab_size;
	m->seq_len = in->seq_len;
	m->weight_bits = in->weight_bits;
	if (in->n_ops == 0) {
		if (m->dim == 0 || m->n_heads == 0 || m->n_kv_heads == 0 ||
		    m->dim % m->n_heads || m->n_heads % m->n_kv_heads) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops': n_ops 0 asks "
			             "for the llama op list, which needs dim "
			             "divisible by "
			             "n_heads and n_heads by n_kv_heads (dim "
			             "%" PRIu32 ", n_heads %" PRIu32
			             ", n_kv_heads %" PRIu32 ")",
			             which, m->dim, m->n_heads, m->n_kv_heads);
			return -EINVAL;
		}
		if (m->weight_bits == 0) {
			util_set_err(err, errlen,
			             "field 'models.%s.weight_bits': "
			             "expected a value in [1, 64], got 0",
			             which);
			return -EINVAL;
		}
		ret = trace_model_llama_ops(m);
		if (ret) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops': cannot derive "
			             "the llama op list: %s",
			             which, strerror(-ret));
			return ret;
		}
	} else {
		uint64_t w = 0;

		if (!in->ops || in->n_ops > TRACE_MAX_OPS) {
			util_set_err(err, errlen,
			             "field 'models.%s.ops': expected an "
			             "array of 1..%u ops, got %s",
			             which, TRACE_MAX_OPS,
			             in->ops ? "more" : "NULL");
			return -EINVAL;
		}
		m->ops = calloc(in->n_ops, sizeof *m->ops);
		if (!m->ops) {
			util_set_err(err, errlen, "out of memory");
			return -ENOMEM;
		}
		m->n_ops = in->n_ops;
		for (uint32_t i = 0; i < in->n_ops; i++) {
			const struct ahasd_capture_op *o = &in->ops[i];
			struct trace_op *t = &m->ops[i];
			int kind = trace_op_kind_parse(o->kind);

			snprintf(field, sizeof field,
			         "models.%s.ops[%" PRIu32 "].name", which, i);
			ret = copy_name(t->name, o->name, field, err, errlen);
			if (ret)
				return ret;
			if (kind < 0) {
				util_set_err(err, errlen,
				             "field 'models.%s.ops[%" PRIu32
				             "].kind': expected one of gemm, "
				             "attention, "
				             "nonlinear, norm, elementwise, "
				             "embed, got %s%s%s",
				             which, i, o->kind ? "\"" : "",
				             o->kind ? o->kind : "NULL",
				             o->kind ? "\"" : "");
				return -EINVAL;
			}
			t->kind = (enum trace_op_kind)kind;
			t->k = o->k;
			t->n = o->n;
			t->heads = o->heads;
			t->kv_heads = o->kv_heads;
			t->head_dim = o->head_dim;
			t->repeat = o->repeat;
			if (t->kind == TRACE_OP_GEMM ||
			    t->kind == TRACE_OP_EMBED)
				w += (uint64_t)t->k * t->n * t->repeat;
		}
		/* the importer's default (capture/IMPORT.md) */
		m->weight_bytes = (w * m->weight_bits + 7) / 8;
	}
	if (in->weight_bytes)
		m->weight_bytes = in->weight_bytes;
	return trace_model_check(m, which, err, errlen);
}

/* The format 1.1 fields of the config (API 2; absent from an API-1
 * config: format 1.0) into the header's features. */
static int features_in(struct trace_header *h,
                       const struct ahasd_capture_config *cfg, char *err,
                       size_t errlen)
{
	typedef struct ahasd_capture_config C;
	const uint32_t R = CAP_HAS(cfg, C, accept_run_max) ? cfg->accept_run_max
	                                                   : 0;
	const uint32_t T = CAP_HAS(cfg, C, tree_tokens) ? cfg->tree_tokens : 0;
	const int noent = CAP_HAS(cfg, C, no_entropy) ? cfg->no_entropy : 0;
	const char *lookup = CAP_HAS(cfg, C, draft_lookup) ? cfg->draft_lookup
	                                                   : NULL;
	int ret;

	if (noent != 0 && noent != 1) {
		util_set_err(err, errlen,
		             "field 'no_entropy': expected 0 or 1, got "
		             "%d",
		             noent);
		return -EINVAL;
	}
	if (noent)
		h->features |= TRACE_F_NO_ENTROPY;
	if (lookup) {
		ret = copy_name(h->draft_lookup, lookup, "draft_lookup", err,
		                errlen);
		if (ret)
			return ret;
		if (cfg->draft) {
			util_set_err(
			        err, errlen,
			        "field 'draft': expected NULL with "
			        "draft_lookup \"%s\" (a lookup has no model)",
			        lookup);
			return -EINVAL;
		}
		h->features |= TRACE_F_DRAFT_LOOKUP;
	}
	if (R == 0) {
		if (T != 0) {
			util_set_err(
			        err, errlen,
			        "field 'tree_tokens': needs "
			        "accept_run_max (the runs' draft length), got "
			        "tree_tokens %" PRIu32 " without it",
			        T);
			return -EINVAL;
		}
		return 0;
	}
	if (R > TRACE_MAX_RUN) {
		util_set_err(err, errlen,
		             "field 'accept_run_max': expected 0 or a "
		             "value in [1, %u], got %" PRIu32,
		             TRACE_MAX_RUN, R);
		return -EINVAL;
	}
	if (T != 0 && (T < R || T > TRACE_MAX_TREE_TOKENS)) {
		util_set_err(err, errlen,
		             "field 'tree_tokens': expected 0 (the "
		             "default) or a value in [accept_run_max = %" PRIu32
		             ", %u], "
		             "got %" PRIu32,
		             R, TRACE_MAX_TREE_TOKENS, T);
		return -EINVAL;
	}
	h->features |= TRACE_F_ACCEPT_RUNS;
	h->run_max = R;
	/* traces/FORMAT.md's default: a lookup proposes a chain, a model's
	 * runs are taken for EAGLE-2's trees of 10 nodes a level */
	h->tree_tokens = T        ? T
	                 : lookup ? R
	                          : (R * 10 > TRACE_MAX_TREE_TOKENS
	                                     ? TRACE_MAX_TREE_TOKENS
	                                     : R * 10);
	return 0;
}

static int header_in(struct trace_header *h,
                     const struct ahasd_capture_config *cfg, char *err,
                     size_t errlen)
{
	char num[UTIL_NUM_LEN];
	int ret;

	ret = check_size(cfg->struct_size, CONFIG_SIZE_V1,
	                 sizeof(struct ahasd_capture_config), "config", err,
	                 errlen);
	if (ret)
		return ret;
	h->version = TRACE_FORMAT_VERSION;
	ret = features_in(h, cfg, err, errlen);
	if (ret)
		return ret;
	/* no continuation rows with runs or without entropies: K not read */
	h->lookahead = trace_header_entropy_full(h) ? cfg->lookahead : 0;
	h->sampled = cfg->sampled != 0;
	h->temperature = h->sampled ? cfg->temperature : 0.0;
	h->top_p = h->sampled ? cfg->top_p : 1.0;
	h->seed = cfg->seed;
	h->synthetic = 0;
	if (h->sampled &&
	    !(cfg->temperature > 0.0 && isfinite(cfg->temperature))) {
		util_set_err(err, errlen,
		             "field 'temperature': expected a finite "
		             "value > 0 for a sampled capture, got %s",
		             util_fmt_double(num, cfg->temperature));
		return -EINVAL;
	}
	if ((!(h->features & TRACE_F_DRAFT_LOOKUP) &&
	     (ret = model_in(&h->draft, cfg->draft, "draft", err, errlen))) ||
	    (ret = model_in(&h->target, cfg->target, "target", err, errlen)))
		return ret;
	if (!(h->features & TRACE_F_DRAFT_LOOKUP) &&
	    h->draft.vocab_size != h->target.vocab_size) {
		util_set_err(err, errlen,
		             "field 'models.draft.vocab_size': expected "
		             "the target's %" PRIu32
		             " (a speculative pair shares one "
		             "vocabulary), got %" PRIu32,
		             h->target.vocab_size, h->draft.vocab_size);
		return -EINVAL;
	}
	if ((ret = trace_header_add_prov(h, "tool", "libahasd-capture")) ||
	    (ret = trace_header_add_prov(h, "tool_version", AHASD_VERSION))) {
		util_set_err(err, errlen, "out of memory");
		return ret;
	}
	return trace_header_check(h, err, errlen);
}

int ahasd_capture_open(struct ahasd_capture **out, const char *path,
                       const struct ahasd_capture_config *cfg, char *err,
                       size_t errlen)
{
	struct ahasd_capture *c = NULL;
	struct outfile *probe = NULL;
	int ret;

	if (!out || !path || !*path || !cfg) {
		util_set_err(err, errlen, "ahasd_capture_open: %s",
		             !out   ? "NULL result pointer"
		             : !cfg ? "NULL config"
		                    : "no path");
		return -EINVAL;
	}
	*out = NULL;
	c = calloc(1, sizeof *c);
	if (!c || !(c->path = strdup(path))) {
		util_set_err(err, errlen, "%s: out of memory", path);
		ret = -ENOMEM;
		goto error;
	}
	ret = header_in(&c->h, cfg, err, errlen);
	if (ret) {
		char pre[512];

		snprintf(pre, sizeof pre, "%s: ", path);
		if (strlen(pre) + strlen(err) < errlen) {
			memmove(err + strlen(pre), err, strlen(err) + 1);
			memcpy(err, pre, strlen(pre));
		}
		goto error;
	}
	/* refuse a folder, a FIFO or an unwritable place now, not after the
	 * runtime's first sequence: create the temporary file and drop it */
	ret = outfile_open(&probe, path, err, errlen);
	if (ret)
		goto error;
	outfile_abort(&probe);
	c->tokens = -1;
	*out = c;
	return 0;
error:
	ahasd_capture_abort(&c);
	return ret;
}

int ahasd_capture_provenance(struct ahasd_capture *c, const char *key,
                             const char *value)
{
	int ret;

	if (!c)
		return -EINVAL;
	if (c->ret)
		return c->ret;
	if (!key || !*key || !value)
		return fail(c, -EINVAL, "ahasd_capture_provenance: %s",
		            !key || !*key ? "no key" : "NULL value");
	if (c->w)
		return fail(c, -EINVAL,
		            "provenance '%s' given after the first "
		            "sequence began: the header is written by then",
		            key);
	if (c->h.n_prov >= TRACE_MAX_PROV && !trace_header_prov(&c->h, key))
		return fail(c, -EINVAL,
		            "field 'provenance': expected at most %u "
		            "entries",
		            TRACE_MAX_PROV);
	ret = trace_header_add_prov(&c->h, key, value);
	if (ret)
		return fail(c, ret, "out of memory");
	return 0;
}

/* ---- sequences ---- */

/* UTC now, or SOURCE_DATE_EPOCH, as ISO-8601 */
static void default_date(char *out, size_t n)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = time(NULL);
	struct tm tm;

	if (sde && *sde) {
		char *end;
		long long v = strtoll(sde, &end, 10);

		if (*end == '\0' && v >= 0)
			t = (time_t)v;
	}
	if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, n, "unknown");
}

static int write_header(struct ahasd_capture *c)
{
	char err[1024];
	int ret;

	if (!trace_header_prov(&c->h, "date")) {
		char date[64];

		default_date(date, sizeof date);
		if (trace_header_add_prov(&c->h, "date", date))
			return fail(c, -ENOMEM, "out of memory");
	}
	ret = trace_writer_open(&c->w, c->path, &c->h, err, sizeof err);
	return ret ? fail_lib(c, ret, err) : 0;
}

int ahasd_capture_begin(struct ahasd_capture *c, uint32_t id,
                        uint32_t prompt_len)
{
	uint64_t first;
	int ret;

	if (!c)
		return -EINVAL;
	if (c->ret)
		return c->ret;
	if (c->open)
		return fail(c, -EINVAL,
		            "sequence %" PRIu32 " begun while sequence "
		            "%" PRIu32 " is open: end it first",
		            id, c->id);
	if (prompt_len >= c->h.target.seq_len)
		return fail(c, -EINVAL,
		            "sequence %" PRIu32 ": prompt_len %" PRIu32
		            " leaves no position within the target's context "
		            "(seq_len %" PRIu32 ")",
		            id, prompt_len, c->h.target.seq_len);
	ret = trace_idset_add(&c->ids, id, c->n_seq, &first);
	if (ret < 0)
		return fail(c, ret, "out of memory");
	if (ret > 0)
		return fail(c, -EINVAL,
		            "sequence %" PRIu32 ": duplicate id (also "
		            "sequence number %" PRIu64 " begun)",
		            id, first + 1);
	if (!c->w && (ret = write_header(c)) != 0)
		return ret;
	c->n_seq++;
	c->open = true;
	c->id = id;
	c->prompt_len = prompt_len;
	c->max_n = c->h.target.seq_len - prompt_len;
	c->tokens = -1;
	c->n = 0;
	c->n_cont = 0;
	return 0;
}

/* realloc *p to hold cap elements of elem bytes */
static int resize(void *p, size_t cap, size_t elem)
{
	void *np = realloc(*(void **)p, cap * elem);

	if (!np)
		return -ENOMEM;
	*(void **)p = np;
	return 0;
}

/* room for one more position, and one more continuation row if cont */
static int reserve(struct ahasd_capture *c, bool cont)
{
	const size_t K = c->h.lookahead;

	if (c->n == c->cap) {
		/* n < max_n <= TRACE_MAX_SEQ_LEN, so this never overflows */
		uint32_t cap = c->cap ? 2 * c->cap : 256;

		if (cap > c->max_n)
			cap = c->max_n;
		if (resize(&c->entropy, cap, sizeof(float)) ||
		    resize(&c->top1, cap, sizeof(float)) ||
		    resize(&c->accept, cap, sizeof(float)) ||
		    resize(&c->token, cap, sizeof(uint32_t)) ||
		    resize(&c->run, cap, sizeof(uint32_t)) ||
		    resize(&c->cont_pos, cap, sizeof(uint32_t)))
			return -ENOMEM;
		c->cap = cap;
	}
	if (cont && c->n_cont == c->cap_cont) {
		uint32_t cap = c->cap_cont ? 2 * c->cap_cont : 64;

		if (cap > c->max_n)
			cap = c->max_n;
		if (resize(&c->cont, cap, K * sizeof(float)))
			return -ENOMEM;
		c->cap_cont = cap;
	}
	return 0;
}

/* fail() naming the open sequence and the position being given */
__attribute__((format(printf, 2, 3))) static int pos_fail(
        struct ahasd_capture *c, const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return fail(c, -EINVAL,
	            "sequence %" PRIu32 ", position %" PRIu32 ": %s", c->id,
	            c->n, what);
}

int ahasd_capture_position(struct ahasd_capture *c,
                           const struct ahasd_capture_position *pos)
{
	const uint32_t K = c ? c->h.lookahead : 0;
	char num[UTIL_NUM_LEN], sz[256];
	float e, t, a;
	uint32_t run = 0;
	bool has_cont, ent, runs;

	if (!c)
		return -EINVAL;
	if (c->ret)
		return c->ret;
	if (!c->open)
		return fail(c, -EINVAL,
		            "position given with no open sequence: "
		            "call ahasd_capture_begin() first");
	if (!pos)
		return fail(c, -EINVAL,
		            "ahasd_capture_position: NULL position");
	if (check_size(pos->struct_size, POSITION_SIZE_V1,
	               sizeof(struct ahasd_capture_position), "position", sz,
	               sizeof sz))
		return fail(c, -EINVAL, "%s", sz);
	/* what the trace has (FORMAT 1.1 of the header): the fields a feature
	 * takes away are not read */
	ent = trace_header_has_entropy(&c->h);
	runs = (c->h.features & TRACE_F_ACCEPT_RUNS) != 0;
	e = ent ? pos->entropy : 0.0f;
	t = ent ? pos->top1 : 0.0f;
	if (runs && CAP_HAS(pos, struct ahasd_capture_position, accept_run))
		run = pos->accept_run;
	/* a run's a_p for statistics, as a reader fills it in */
	a = runs ? (run > 0 ? 1.0f : 0.0f) : pos->accept;
	has_cont = trace_header_entropy_full(&c->h) && a < 1.0f;
	if (c->n >= c->max_n)
		return pos_fail(c,
		                "past the target's context: prompt_len %" PRIu32
		                " + %" PRIu32
		                " positions reach seq_len %" PRIu32,
		                c->prompt_len, c->n, c->h.target.seq_len);
	if (!(e >= 0.0f && isfinite(e)))
		return pos_fail(c,
		                "field 'entropy': expected a finite value >= 0 "
		                "nats, got %s",
		                util_fmt_float(num, e));
	if (!(t >= 0.0f && t <= 1.0f))
		return pos_fail(
		        c,
		        "field 'top1': expected a probability in [0, 1], "
		        "got %s",
		        util_fmt_float(num, t));
	if (runs && run > c->h.run_max)
		return pos_fail(c,
		                "field 'accept_run': expected at most "
		                "accept_run_max = %" PRIu32 ", got %" PRIu32,
		                c->h.run_max, run);
	if (!(a >= 0.0f && a <= 1.0f))
		return pos_fail(
		        c,
		        "field 'accept': expected a probability in [0, 1], "
		        "got %s",
		        util_fmt_float(num, a));
	if (!runs && !c->h.sampled && a != 0.0f && a != 1.0f)
		return pos_fail(c,
		                "field 'accept': expected 0 or 1 in a greedy "
		                "capture, got %s",
		                util_fmt_float(num, a));
	if (has_cont && !pos->cont)
		return pos_fail(c,
		                "field 'cont': accept %s < 1 needs the draft's "
		                "continuation (%" PRIu32
		                " entropies), got NULL",
		                util_fmt_float(num, a), K);
	if (trace_header_entropy_full(&c->h) && !has_cont && pos->cont)
		return pos_fail(
		        c, "field 'cont': expected NULL where accept is 1 (no "
		           "rejection, no continuation)");
	if (pos->token < AHASD_CAPTURE_NO_TOKEN ||
	    (pos->token >= 0 && (uint32_t)pos->token >= c->h.target.vocab_size))
		return pos_fail(
		        c,
		        "field 'token': expected a token id in [0, %" PRIu32
		        ") or AHASD_CAPTURE_NO_TOKEN, got %" PRId32,
		        c->h.target.vocab_size, pos->token);
	if (c->tokens >= 0 && c->tokens != (pos->token >= 0))
		return pos_fail(
		        c,
		        "field 'token': %s, but the earlier positions of "
		        "this sequence %s",
		        pos->token >= 0 ? "a token id" : "no token",
		        c->tokens ? "have one" : "have none");
	if (has_cont)
		for (uint32_t j = 0; j < K; j++)
			if (!(pos->cont[j] >= 0.0f && isfinite(pos->cont[j])))
				return pos_fail(
				        c,
				        "field 'cont[%" PRIu32 "]': expected a "
				        "finite entropy >= 0 nats, got %s",
				        j, util_fmt_float(num, pos->cont[j]));
	if (reserve(c, has_cont))
		return fail(c, -ENOMEM, "out of memory");
	c->tokens = pos->token >= 0;
	c->entropy[c->n] = e;
	c->top1[c->n] = t;
	c->accept[c->n] = a;
	c->run[c->n] = run;
	c->token[c->n] = pos->token >= 0 ? (uint32_t)pos->token : 0;
	if (has_cont) {
		memcpy(c->cont + (size_t)c->n_cont * K, pos->cont,
		       (size_t)K * sizeof(float));
		c->cont_pos[c->n_cont++] = c->n;
	}
	c->n++;
	return 0;
}

int ahasd_capture_end(struct ahasd_capture *c)
{
	struct trace_seq s;
	char err[1024];
	int ret;

	if (!c)
		return -EINVAL;
	if (c->ret)
		return c->ret;
	if (!c->open)
		return fail(c, -EINVAL,
		            "ahasd_capture_end() with no open sequence");
	if (c->n == 0)
		return fail(
		        c, -EINVAL,
		        "sequence %" PRIu32 ": ended with no "
		        "position (a sequence generates at least one token)",
		        c->id);
	memset(&s, 0, sizeof s);
	s.id = c->id;
	s.prompt_len = c->prompt_len;
	s.n = c->n;
	s.entropy = trace_header_has_entropy(&c->h) ? c->entropy : NULL;
	s.top1 = trace_header_has_entropy(&c->h) ? c->top1 : NULL;
	s.accept = c->accept;
	s.accept_run = c->h.features & TRACE_F_ACCEPT_RUNS ? c->run : NULL;
	s.tokens = c->tokens == 1 ? c->token : NULL;
	s.n_cont = c->n_cont;
	s.cont_pos = c->cont_pos;
	s.cont_entropy = c->cont;
	ret = trace_writer_add(c->w, &s, err, sizeof err);
	if (ret)
		return fail_lib(c, ret, err);
	c->open = false;
	return 0;
}

/* ---- closing ---- */

static void capture_free(struct ahasd_capture *c)
{
	trace_writer_abort(&c->w);
	trace_header_clear(&c->h);
	trace_idset_clear(&c->ids);
	free(c->entropy);
	free(c->top1);
	free(c->accept);
	free(c->token);
	free(c->run);
	free(c->cont_pos);
	free(c->cont);
	free(c->path);
	free(c);
}

int ahasd_capture_close(struct ahasd_capture **cp, char *err, size_t errlen)
{
	struct ahasd_capture *c;
	int ret;

	if (!cp || !*cp)
		return 0;
	c = *cp;
	*cp = NULL;
	if (!c->ret && c->open)
		(void)fail(c, -EINVAL,
		           "closed while sequence %" PRIu32 " is open "
		           "(%" PRIu32
		           " positions): end it, or abort the capture",
		           c->id, c->n);
	if (!c->ret && !c->w)
		(void)write_header(c);
	if (!c->ret) {
		char e[1024];

		ret = trace_writer_close(&c->w, e, sizeof e);
		if (ret)
			(void)fail_lib(c, ret, e);
	}
	ret = c->ret;
	if (ret)
		util_set_err(err, errlen, "%s", c->msg);
	capture_free(c);
	return ret;
}

void ahasd_capture_abort(struct ahasd_capture **cp)
{
	if (!cp || !*cp)
		return;
	capture_free(*cp);
	*cp = NULL;
}
