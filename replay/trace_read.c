/* trace_read.c - the streaming reader of trace format 1.0 and 1.1.
 *
 * The reader reads the file in 64 KiB chunks into its own buffer, hashing
 * every byte as it arrives (SHA-256, one pass), and walks each top-level
 * object's headers (tf_scan_object) before msgpack-c sees it: msgpack-c
 * unpacks only objects whose bytes are all there, so what it allocates is
 * bounded by bytes actually read, and a header claiming more than the
 * file holds is reported as such. Every field needed is copied into the
 * reader's own growing arrays (bins are memcpy'd); no msgpack_object is
 * kept past the next call.
 */
#include "trace_impl.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"

struct trace_reader {
	char *path;
	int fd;
	bool eof;        /* read() returned 0 */
	bool done;       /* end marker seen and checked */
	bool size_known; /* a regular file: file_size is its length */
	uint64_t file_size;
	/* bytes read and not yet consumed: buf[start, end) starts at file
	 * offset `consumed`; msgpack-c only ever sees a complete object */
	unsigned char *buf;
	size_t cap, start, end;
	msgpack_unpacked res;
	uint64_t consumed; /* file bytes of all completed objects */
	uint64_t obj_off;  /* start of the current object */
	uint64_t first_seq_off;
	uint64_t n_seq, n_tok;     /* counted so far */
	uint64_t end_seq, end_tok; /* from the end marker */
	struct trace_header h;
	struct trace_idset ids; /* sequence id -> offset of its record */
	/* SHA-256 of every byte read, on the first pass only */
	struct sha256_ctx sha;
	bool hashing;
	char sha_hex[65]; /* "" until the first pass reached EOF */

	float *entropy, *top1, *accept, *cont_entropy;
	uint32_t *tokens, *cont_pos, *accept_run;
	int32_t *cont_index;
	size_t cap_entropy, cap_top1, cap_accept, cap_tokens, cap_index;
	size_t cap_cont_pos, cap_cont_entropy, cap_run;
};

/* Read more bytes after buf[end]; at least up to `need` bytes of buffered
 * data when the file has them. @return 0 (r->eof set at the end of the
 * file) or -errno. */
static int rd_fill(struct trace_reader *r, size_t need, char *err,
                   size_t errlen)
{
	size_t want;
	ssize_t got;

	if (r->start > 0) { /* keep only the unconsumed bytes */
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
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": out of "
			             "memory buffering %zu bytes of the record "
			             "starting "
			             "here",
			             r->path, r->consumed, want);
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
		                   ? r->file_size - r->consumed
		                   : UINT64_MAX;
		if (sc.limit < avail) /* the file grew since it was opened */
			sc.limit = r->eof ? avail : UINT64_MAX;
		switch (avail ? tf_scan_object(r->buf + r->start, avail, &sc)
		              : SCAN_MORE) {
		case SCAN_DONE:
			if (msgpack_unpack_next(
			            &r->res, (const char *)r->buf + r->start,
			            sc.size, &off) != MSGPACK_UNPACK_SUCCESS ||
			    off != sc.size) {
				util_set_err(err, errlen,
				             "%s: offset %" PRIu64 ": "
				             "malformed msgpack in the object "
				             "starting "
				             "here",
				             r->path, r->consumed);
				return -EINVAL;
			}
			r->obj_off = r->consumed;
			r->consumed += sc.size;
			r->start += sc.size;
			return 1;
		case SCAN_BAD:
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": malformed "
			             "msgpack: %s at byte %" PRIu64,
			             r->path, r->consumed, sc.what,
			             r->consumed + sc.at);
			return -EINVAL;
		case SCAN_CLAIM: {
			const bool bytes = sc.what[0] == 's' ||
			                   sc.what[0] == 'b' ||
			                   sc.what[0] == 'e';

			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": the %s at "
			             "byte %" PRIu64 " claims %" PRIu64
			             " %s, but only "
			             "%" PRIu64
			             " bytes follow its header in the file",
			             r->path, r->consumed, sc.what,
			             r->consumed + sc.at, sc.claim,
			             bytes               ? "bytes"
			             : sc.what[0] == 'm' ? "entries"
			                                 : "elements",
			             sc.left);
			return -EINVAL;
		}
		case SCAN_MORE: need = sc.need; break;
		}
		if (r->eof) {
			if (avail == 0)
				return 0;
			util_set_err(
			        err, errlen,
			        "%s: offset %" PRIu64 ": truncated: the "
			        "record starting here is incomplete (file ends "
			        "%zu bytes into it)",
			        r->path, r->consumed, avail);
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
		util_set_err(err, errlen,
		             "%s: offset %" PRIu64 ": expected a record "
		             "map with a \"type\" key, got %s",
		             r->path, r->obj_off, tf_describe(o, d, sizeof d));
		return -EINVAL;
	}
	*type = tf_map_find(o, "type");
	if (!*type)
		return tf_perr(&c, "", "type",
		               "expected a string naming the record "
		               "type, got nothing (missing)");
	if ((*type)->type != MSGPACK_OBJECT_STR)
		return tf_perr(&c, "", "type",
		               "expected a string naming the record "
		               "type, got %s",
		               tf_describe(*type, d, sizeof d));
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
	const struct {
		const char *key;
		uint32_t *dst;
	} dims[] = {
		{ "dim", &m->dim },
		{ "hidden_dim", &m->hidden_dim },
		{ "n_layers", &m->n_layers },
		{ "n_heads", &m->n_heads },
		{ "n_kv_heads", &m->n_kv_heads },
		{ "vocab_size", &m->vocab_size },
		{ "seq_len", &m->seq_len },
		{ "weight_bits", &m->weight_bits },
	};

	snprintf(pre, sizeof pre, "models.");
	ret = tf_need(c, pre, models, which, "a model map", &mo);
	if (ret < 0)
		return ret;
	if (mo->type != MSGPACK_OBJECT_MAP)
		return tf_perr(c, pre, which, "expected a model map, got %s",
		               tf_describe(mo, d, sizeof d));
	snprintf(pre, sizeof pre, "models.%s.", which);
	ret = tf_check_unique(c, pre, mo);
	if (ret == 0)
		ret = tf_get_str(c, pre, mo, "name", m->name, sizeof m->name);
	for (size_t i = 0; ret == 0 && i < sizeof dims / sizeof dims[0]; i++)
		ret = tf_get_u32(c, pre, mo, dims[i].key, dims[i].dst);
	if (ret == 0)
		ret = tf_get_u64(c, pre, mo, "weight_bytes", UINT64_MAX, &wb);
	if (ret < 0)
		return ret;
	m->weight_bytes = wb;
	ret = tf_need(c, pre, mo, "ops", "an array of op maps", &ops);
	if (ret < 0)
		return ret;
	if (ops->type != MSGPACK_OBJECT_ARRAY)
		return tf_perr(c, pre, "ops",
		               "expected an array of op maps, got %s",
		               tf_describe(ops, d, sizeof d));
	if (ops->via.array.size > TRACE_MAX_OPS)
		return tf_perr(c, pre, "ops",
		               "expected at most %u ops, got %" PRIu32,
		               TRACE_MAX_OPS, ops->via.array.size);
	m->n_ops = 0;
	m->ops = calloc(ops->via.array.size ? ops->via.array.size : 1,
	                sizeof *m->ops);
	if (!m->ops) {
		util_set_err(c->err, c->errlen,
		             "%s: offset %" PRIu64 ": out of "
		             "memory for %" PRIu32 " ops of models.%s",
		             c->path, c->off, ops->via.array.size, which);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < ops->via.array.size; i++) {
		const msgpack_object *oo = &ops->via.array.ptr[i];
		struct trace_op *op = &m->ops[i];
		const msgpack_object *sc;
		int k;
		const struct {
			const char *key;
			uint32_t *dst;
		} od[] = {
			{ "k", &op->k },
			{ "n", &op->n },
			{ "heads", &op->heads },
			{ "kv_heads", &op->kv_heads },
			{ "head_dim", &op->head_dim },
			{ "repeat", &op->repeat },
		};

		snprintf(opre, sizeof opre, "models.%s.ops[%" PRIu32 "]", which,
		         i);
		if (oo->type != MSGPACK_OBJECT_MAP)
			return tf_perr(c, opre, "",
			               "expected an op map, got %s",
			               tf_describe(oo, d, sizeof d));
		snprintf(opre, sizeof opre, "models.%s.ops[%" PRIu32 "].",
		         which, i);
		ret = tf_check_unique(c, opre, oo);
		if (ret == 0)
			ret = tf_get_str(c, opre, oo, "name", op->name,
			                 sizeof op->name);
		if (ret == 0)
			ret = tf_get_str(c, opre, oo, "kind", kind,
			                 sizeof kind);
		if (ret < 0)
			return ret;
		k = trace_op_kind_parse(kind);
		if (k < 0)
			return tf_perr(c, opre, "kind",
			               "expected one of gemm, attention, "
			               "nonlinear, norm, elementwise, embed, "
			               "got \"%s\"",
			               escape(kind, strlen(kind), d, sizeof d));
		op->kind = (enum trace_op_kind)k;
		for (size_t j = 0; ret == 0 && j < sizeof od / sizeof od[0];
		     j++)
			ret = tf_get_u32(c, opre, oo, od[j].key, od[j].dst);
		if (ret == 0)
			ret = tf_need(c, opre, oo, "scales", "\"M\" or \"ML\"",
			              &sc);
		if (ret < 0)
			return ret;
		if (!tf_str_eq(sc, kind_scales(op->kind)))
			return tf_perr(c, opre, "scales",
			               "expected \"%s\" for kind '%s', "
			               "got %s",
			               kind_scales(op->kind), kind,
			               tf_describe(sc, d, sizeof d));
		m->n_ops = i + 1;
	}
	ret = trace_model_check(m, which, c->err, c->errlen);
	if (ret < 0)
		tf_prefix_loc(c);
	return ret;
}

/* The features array of a "1.1" header: known names, each once, at
 * least one. */
static int parse_features(const struct pctx *c, const msgpack_object *o,
                          uint32_t *out)
{
	const msgpack_object *f;
	char d[256], key[32];
	uint32_t set = 0;
	int ret = tf_need(c, "", o, "features",
	                  "an array of feature names "
	                  "(version \"1.1\")",
	                  &f);

	if (ret < 0)
		return ret;
	if (f->type != MSGPACK_OBJECT_ARRAY || f->via.array.size == 0)
		return tf_perr(c, "", "features",
		               "expected a non-empty array of "
		               "feature names, got %s",
		               tf_describe(f, d, sizeof d));
	for (uint32_t i = 0; i < f->via.array.size; i++) {
		const msgpack_object *e = &f->via.array.ptr[i];
		uint32_t bit;

		snprintf(key, sizeof key, "features[%" PRIu32 "]", i);
		if (e->type != MSGPACK_OBJECT_STR)
			return tf_perr(c, "", key,
			               "expected a feature name, got %s",
			               tf_describe(e, d, sizeof d));
		bit = trace_feature_parse(e->via.str.ptr, e->via.str.size);
		if (!bit)
			return tf_perr(
			        c, "", key,
			        "feature %s is not known to this "
			        "reader (it knows accept_runs, no_entropy, "
			        "draft_lookup)",
			        tf_describe(e, d, sizeof d) + 4);
		if (set & bit)
			return tf_perr(c, "", key, "feature %s is listed twice",
			               tf_describe(e, d, sizeof d) + 4);
		set |= bit;
	}
	*out = set;
	return 0;
}

/* The header fields of the 1.1 features (none for a 1.0 header: keys of
 * a feature the header does not list are refused). */
static int parse_header11(const struct pctx *c, const msgpack_object *o,
                          struct trace_header *h)
{
	static const struct {
		const char *key;
		uint32_t feature;
	} keys[] = {
		{ "accept_run_max", TRACE_F_ACCEPT_RUNS },
		{ "tree_tokens", TRACE_F_ACCEPT_RUNS },
		{ "draft_lookup", TRACE_F_DRAFT_LOOKUP },
	};
	int ret;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!(h->features & keys[i].feature) &&
		    tf_map_find(o, keys[i].key))
			return tf_perr(
			        c, "", keys[i].key,
			        "expected none without "
			        "feature %s",
			        trace_feature_name(
			                (enum trace_feature)keys[i].feature));
	if (h->features & TRACE_F_ACCEPT_RUNS) {
		ret = tf_get_u32(c, "", o, "accept_run_max", &h->run_max);
		if (ret < 0)
			return ret;
		if (tf_map_find(o, "tree_tokens")) {
			ret = tf_get_u32(c, "", o, "tree_tokens",
			                 &h->tree_tokens);
			if (ret < 0)
				return ret;
		} else {
			/* FORMAT.md: a lookup proposes one chain; a model's runs
			 * default to EAGLE-2's tree, 10 nodes per level */
			const uint64_t t = h->features & TRACE_F_DRAFT_LOOKUP
			                           ? h->run_max
			                           : (uint64_t)h->run_max * 10;
			h->tree_tokens = t > UINT32_MAX ? UINT32_MAX
			                                : (uint32_t)t;
		}
	}
	if (h->features & TRACE_F_DRAFT_LOOKUP) {
		ret = tf_get_str(c, "", o, "draft_lookup", h->draft_lookup,
		                 sizeof h->draft_lookup);
		if (ret < 0)
			return ret;
	}
	return 0;
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
	ret = tf_check_unique(&c, "", o);
	if (ret == 0)
		ret = tf_need(&c, "", o, "magic", "\"" TRACE_MAGIC "\"", &v);
	if (ret < 0)
		return ret;
	if (!tf_str_eq(v, TRACE_MAGIC))
		return tf_perr(&c, "", "magic",
		               "expected \"" TRACE_MAGIC "\", got %s",
		               tf_describe(v, d, sizeof d));
	/* 1 (format 1.0) or "1.1"; a 1.0 reader takes only the integer */
	v = tf_map_find(o, "version");
	if (v && v->type == MSGPACK_OBJECT_STR) {
		if (!tf_str_eq(v, "1.1"))
			return tf_perr(&c, "", "version",
			               "expected \"1.1\" (or the "
			               "unsigned integer 1), got %s",
			               tf_describe(v, d, sizeof d));
		ret = parse_features(&c, o, &h->features);
		if (ret < 0)
			return ret;
		u = TRACE_FORMAT_VERSION;
	} else {
		ret = tf_get_u64(&c, "", o, "version", UINT64_MAX, &u);
		if (ret < 0)
			return ret;
		if (u != TRACE_FORMAT_VERSION)
			return tf_perr(
			        &c, "", "version",
			        "expected %d (the only "
			        "version this reader supports), got %" PRIu64,
			        TRACE_FORMAT_VERSION, u);
		if (tf_map_find(o, "features"))
			return tf_perr(
			        &c, "", "features",
			        "expected none in a "
			        "version 1 header (features need version "
			        "\"1.1\"), got %s",
			        tf_describe(tf_map_find(o, "features"), d,
			                    sizeof d));
	}
	h->version = (uint32_t)u;
	ret = parse_header11(&c, o, h);
	if (ret == 0 && trace_header_entropy_full(h))
		ret = tf_get_u32(&c, "", o, "lookahead", &h->lookahead);
	else if (ret == 0 && tf_map_find(o, "lookahead"))
		ret = tf_perr(&c, "", "lookahead",
		              "expected none in a trace "
		              "without continuation rows (feature %s)",
		              h->features & TRACE_F_ACCEPT_RUNS ? "accept_runs"
		                                                : "no_entropy");
	if (ret == 0)
		ret = tf_get_str(&c, "", o, "sampling", buf, sizeof buf);
	if (ret < 0)
		return ret;
	if (strcmp(buf, "greedy") == 0)
		h->sampled = 0;
	else if (strcmp(buf, "sampled") == 0)
		h->sampled = 1;
	else
		return tf_perr(&c, "", "sampling",
		               "expected \"greedy\" or "
		               "\"sampled\", got \"%s\"",
		               escape(buf, strlen(buf), d, sizeof d));
	ret = tf_get_f64(&c, "", o, "temperature", &h->temperature);
	if (ret == 0)
		ret = tf_get_f64(&c, "", o, "top_p", &h->top_p);
	if (ret == 0)
		ret = tf_get_u64(&c, "", o, "seed", UINT64_MAX, &h->seed);
	if (ret == 0)
		ret = tf_get_bool(&c, "", o, "synthetic", &h->synthetic);
	if (ret == 0)
		ret = tf_need(&c, "", o, "provenance", "a map of strings",
		              &prov);
	if (ret < 0)
		return ret;
	if (prov->type != MSGPACK_OBJECT_MAP)
		return tf_perr(&c, "", "provenance",
		               "expected a map of strings, "
		               "got %s",
		               tf_describe(prov, d, sizeof d));
	if (prov->via.map.size > TRACE_MAX_PROV)
		return tf_perr(&c, "", "provenance",
		               "expected at most %u entries, "
		               "got %" PRIu32,
		               TRACE_MAX_PROV, prov->via.map.size);
	ret = tf_check_unique(&c, "provenance.", prov);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < prov->via.map.size; i++) {
		const msgpack_object_kv *kv = &prov->via.map.ptr[i];
		char *k, *val;

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type != MSGPACK_OBJECT_STR) {
			snprintf(buf, sizeof buf, "[%" PRIu32 "]", i);
			return tf_perr(
			        &c, "provenance", buf,
			        "expected a string key "
			        "and string value, got %s",
			        tf_describe(kv->key.type != MSGPACK_OBJECT_STR
			                            ? &kv->key
			                            : &kv->val,
			                    d, sizeof d));
		}
		if (memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size) ||
		    memchr(kv->val.via.str.ptr, '\0', kv->val.via.str.size)) {
			snprintf(buf, sizeof buf, "[%" PRIu32 "]", i);
			return tf_perr(&c, "provenance", buf,
			               "expected strings "
			               "without NUL bytes, got one with");
		}
		k = tf_alloc_str(&kv->key);
		val = tf_alloc_str(&kv->val);
		/* keys are unique (checked above): append, no lookup */
		if (!k || !val || trace_header_append_prov(h, k, val) < 0) {
			free(k);
			free(val);
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": out of "
			             "memory reading provenance entry %" PRIu32,
			             r->path, r->obj_off, i);
			return -ENOMEM;
		}
		free(k);
		free(val);
	}
	ret = tf_need(&c, "", o, "models", "a map with draft and target",
	              &models);
	if (ret < 0)
		return ret;
	if (models->type != MSGPACK_OBJECT_MAP)
		return tf_perr(&c, "", "models",
		               "expected a map with draft and "
		               "target, got %s",
		               tf_describe(models, d, sizeof d));
	ret = tf_check_unique(&c, "models.", models);
	if (ret == 0 && (h->features & TRACE_F_DRAFT_LOOKUP)) {
		if (tf_map_find(models, "draft"))
			ret = tf_perr(
			        &c, "models.", "draft",
			        "not allowed with "
			        "feature draft_lookup (the draft is the lookup "
			        "\"%s\", it has no model)",
			        h->draft_lookup);
	} else if (ret == 0) {
		ret = parse_model(&c, models, "draft", &h->draft);
	}
	if (ret == 0)
		ret = parse_model(&c, models, "target", &h->target);
	if (ret == 0) {
		ret = trace_header_check(h, err, errlen);
		if (ret < 0)
			tf_prefix_loc(&c);
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

/* The per-token arrays of a sequence of a 1.1 trace: what its features
 * require, and none of what they replace. */
static int parse_seq11(const struct pctx *c, const struct trace_header *h,
                       const msgpack_object *o, uint32_t n,
                       const msgpack_object_bin **ent,
                       const msgpack_object_bin **top1,
                       const msgpack_object_bin **acc,
                       const msgpack_object_bin **run)
{
	const int runs = (h->features & TRACE_F_ACCEPT_RUNS) != 0;
	const int has_ent = trace_header_has_entropy(h);
	const struct {
		const char *key;
		int allowed;
		const char *feature;
	} no[] = {
		{ "accept", !runs, "accept_runs" },
		{ "accept_run", runs, "accept_runs" },
		{ "entropy", has_ent, "no_entropy" },
		{ "top1", has_ent, "no_entropy" },
		{ "cont_pos", trace_header_entropy_full(h),
		  runs ? "accept_runs" : "no_entropy" },
		{ "cont_entropy", trace_header_entropy_full(h),
		  runs ? "accept_runs" : "no_entropy" },
	};
	int ret = 0;

	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		const msgpack_object *v = tf_map_find(o, no[i].key);

		if (!no[i].allowed && v && v->type != MSGPACK_OBJECT_NIL)
			return tf_perr(
			        c, "", no[i].key,
			        "not allowed with feature "
			        "%s%s",
			        no[i].feature,
			        !strcmp(no[i].key, "accept") ? " (accept_run "
			                                       "replaces it)"
			        : !strcmp(no[i].key, "accept_run")
			                ? " (it needs feature accept_runs)"
			                : "");
	}
	if (has_ent) {
		ret = tf_get_bin(c, "", o, "entropy", (size_t)n * 4, BIN_F32_N,
		                 n, 0, false, ent);
		if (ret == 0)
			ret = tf_get_bin(c, "", o, "top1", (size_t)n * 4,
			                 BIN_F32_N, n, 0, false, top1);
	}
	if (ret == 0 && runs)
		ret = tf_get_bin(c, "", o, "accept_run", (size_t)n * 4,
		                 BIN_U32_N, n, 0, false, run);
	else if (ret == 0)
		ret = tf_get_bin(c, "", o, "accept", (size_t)n * 4, BIN_F32_N,
		                 n, 0, false, acc);
	return ret;
}

static int parse_seq(struct trace_reader *r, const msgpack_object *o,
                     struct trace_seq *s, char *err, size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	const uint32_t K = r->h.lookahead;
	const msgpack_object_bin *ent = NULL, *top1 = NULL, *acc = NULL,
	                         *run = NULL, *tok, *cpos = NULL, *cent = NULL;
	uint32_t id = 0, prompt_len = 0, n = 0, n_cont;
	int ret;

	ret = tf_check_unique(&c, "", o);
	if (ret == 0)
		ret = tf_get_u32(&c, "", o, "id", &id);
	if (ret == 0)
		ret = tf_get_u32(&c, "", o, "prompt_len", &prompt_len);
	if (ret == 0)
		ret = tf_get_u32(&c, "", o, "n", &n);
	if (ret < 0)
		return ret;
	if (r->h.features) {
		ret = parse_seq11(&c, &r->h, o, n, &ent, &top1, &acc, &run);
		if (ret < 0)
			return ret;
	} else {
		if (tf_map_find(o, "accept_run"))
			return tf_perr(
			        &c, "", "accept_run",
			        "not allowed without "
			        "feature accept_runs (a version \"1.1\" header "
			        "lists it)");
		ret = tf_get_bin(&c, "", o, "entropy", (size_t)n * 4, BIN_F32_N,
		                 n, 0, false, &ent);
		if (ret == 0)
			ret = tf_get_bin(&c, "", o, "top1", (size_t)n * 4,
			                 BIN_F32_N, n, 0, false, &top1);
		if (ret == 0)
			ret = tf_get_bin(&c, "", o, "accept", (size_t)n * 4,
			                 BIN_F32_N, n, 0, false, &acc);
		if (ret < 0)
			return ret;
	}
	ret = tf_get_bin(&c, "", o, "tokens", (size_t)n * 4, BIN_U32_N, n, 0,
	                 true, &tok);
	if (ret < 0)
		return ret;
	if (trace_header_entropy_full(&r->h)) {
		ret = tf_get_bin(&c, "", o, "cont_pos", 0, BIN_U32_ANY, 0, 0,
		                 false, &cpos);
		if (ret < 0)
			return ret;
		n_cont = cpos->size / 4;
		if (n_cont > n)
			return tf_perr(&c, "", "cont_pos",
			               "expected at most n = %" PRIu32
			               " positions, got %" PRIu32,
			               n, n_cont);
		ret = tf_get_bin(&c, "", o, "cont_entropy",
		                 (size_t)n_cont * K * 4, BIN_F32_CONT, n_cont,
		                 K, false, &cent);
		if (ret < 0)
			return ret;
	} else {
		n_cont = 0;
	}

	if ((ent &&
	     grow((void **)&r->entropy, &r->cap_entropy, n, sizeof(float))) ||
	    (top1 && grow((void **)&r->top1, &r->cap_top1, n, sizeof(float))) ||
	    grow((void **)&r->accept, &r->cap_accept, n, sizeof(float)) ||
	    (run &&
	     grow((void **)&r->accept_run, &r->cap_run, n, sizeof(uint32_t))) ||
	    grow((void **)&r->cont_index, &r->cap_index, n, sizeof(int32_t)) ||
	    (tok &&
	     grow((void **)&r->tokens, &r->cap_tokens, n, sizeof(uint32_t))) ||
	    grow((void **)&r->cont_pos, &r->cap_cont_pos, n_cont ? n_cont : 1,
	         sizeof(uint32_t)) ||
	    grow((void **)&r->cont_entropy, &r->cap_cont_entropy,
	         n_cont ? (size_t)n_cont * K : 1, sizeof(float))) {
		util_set_err(err, errlen,
		             "%s: offset %" PRIu64 ": out of memory for a "
		             "sequence of %" PRIu32 " tokens",
		             r->path, r->obj_off, n);
		return -ENOMEM;
	}
	if (ent)
		copy_le32(r->entropy, ent);
	if (top1)
		copy_le32(r->top1, top1);
	if (acc)
		copy_le32(r->accept, acc);
	if (run) {
		copy_le32(r->accept_run, run);
		/* what a one-token speculation from p gets (FORMAT.md) */
		for (uint32_t p = 0; p < n; p++)
			r->accept[p] = r->accept_run[p] ? 1.0f : 0.0f;
	}
	if (tok)
		copy_le32(r->tokens, tok);
	if (cpos)
		copy_le32(r->cont_pos, cpos);
	if (cent)
		copy_le32(r->cont_entropy, cent);

	memset(s, 0, sizeof *s);
	s->id = id;
	s->prompt_len = prompt_len;
	s->n = n;
	s->entropy = ent ? r->entropy : NULL;
	s->top1 = top1 ? r->top1 : NULL;
	s->accept = r->accept;
	s->accept_run = run ? r->accept_run : NULL;
	s->tokens = tok ? r->tokens : NULL;
	s->n_cont = n_cont;
	s->cont_pos = r->cont_pos;
	s->cont_entropy = r->cont_entropy;
	ret = trace_seq_check(&r->h, s, err, errlen);
	if (ret < 0) {
		tf_prefix_loc(&c);
		memset(s, 0, sizeof *s);
		return ret;
	}
	{
		uint64_t first;

		ret = trace_idset_add(&r->ids, id, r->obj_off, &first);
		if (ret != 0) {
			memset(s, 0, sizeof *s);
			if (ret < 0) {
				util_set_err(
				        err, errlen,
				        "%s: offset %" PRIu64 ": out "
				        "of memory remembering sequence ids",
				        r->path, r->obj_off);
				return ret;
			}
			return tf_perr(&c, "", "id",
			               "duplicate sequence id %" PRIu32
			               " (also the sequence at offset %" PRIu64
			               ")",
			               id, first);
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

static int parse_end(struct trace_reader *r, const msgpack_object *o, char *err,
                     size_t errlen)
{
	const struct pctx c = { r->path, r->obj_off, err, errlen };
	int ret;

	ret = tf_check_unique(&c, "", o);
	if (ret == 0)
		ret = tf_get_u64(&c, "", o, "n_sequences", UINT64_MAX,
		                 &r->end_seq);
	if (ret == 0)
		ret = tf_get_u64(&c, "", o, "n_tokens", UINT64_MAX,
		                 &r->end_tok);
	if (ret < 0)
		return ret;
	if (r->end_seq != r->n_seq)
		return tf_perr(&c, "", "n_sequences",
		               "expected %" PRIu64
		               " (the sequences read), got %" PRIu64,
		               r->n_seq, r->end_seq);
	if (r->end_tok != r->n_tok)
		return tf_perr(&c, "", "n_tokens",
		               "expected %" PRIu64
		               " (the tokens read), got %" PRIu64,
		               r->n_tok, r->end_tok);
	return 0;
}

int trace_reader_open(struct trace_reader **out, const char *path, char *err,
                      size_t errlen)
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
		util_set_err(err, errlen,
		             "%s: offset 0: truncated: empty file, "
		             "expected a header record",
		             path);
		ret = -EINVAL;
	}
	if (ret < 0)
		goto error;
	ret = rd_record(r, &map, &type, err, errlen);
	if (ret < 0)
		goto error;
	if (!tf_str_eq(type, "header")) {
		const struct pctx c = { r->path, r->obj_off, err, errlen };
		char d[256];

		ret = tf_perr(&c, "", "type",
		              "expected \"header\" as the first "
		              "record, got %s",
		              tf_describe(type, d, sizeof d));
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

int trace_reader_next(struct trace_reader *r, struct trace_seq *seq, char *err,
                      size_t errlen)
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
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": truncated: "
			             "file ends without an end marker (after "
			             "%" PRIu64 " sequences)",
			             r->path, r->consumed, r->n_seq);
			return -EINVAL;
		}
		if (ret < 0)
			return ret;
		ret = rd_record(r, &map, &type, err, errlen);
		if (ret < 0)
			return ret;
		if (tf_str_eq(type, "seq")) {
			ret = parse_seq(r, map, seq, err, errlen);
			if (ret < 0)
				return ret;
			r->n_seq++;
			r->n_tok += seq->n;
			return 1;
		}
		if (tf_str_eq(type, "end"))
			break;
		if (tf_str_eq(type, "header")) {
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": field 'type': "
			             "expected \"seq\" or \"end\", got a "
			             "second \"header\"",
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
			util_set_err(err, errlen,
			             "%s: offset %" PRIu64 ": trailing data "
			             "after the end marker",
			             r->path, r->obj_off);
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
			util_set_err(err, errlen,
			             "%s: cannot read the trace again "
			             "(%s): a pipe or FIFO can be read only "
			             "once; write "
			             "the trace to a file first",
			             r->path, strerror(e));
		else
			util_set_err(err, errlen, "%s: seek: %s", r->path,
			             strerror(e));
		return -e;
	}
	msgpack_unpacked_destroy(&r->res);
	msgpack_unpacked_init(&r->res);
	r->start = r->end = 0;
	r->hashing = false; /* the first pass hashed the file, or failed */
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
	free(r->accept_run);
	free(r->tokens);
	free(r->cont_pos);
	free(r->cont_entropy);
	free(r->cont_index);
	free(r->path);
	free(r);
	*rp = NULL;
}
