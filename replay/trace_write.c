/* trace_write.c - the writer of trace format 1.0 and 1.1 (1.1 only when
 * the header uses a 1.1 feature): records are checked as
 * the reader would, then packed; the file appears only when complete. */
#include "trace_impl.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>

#include "outfile.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* writer                                                                    */

struct trace_writer {
	struct outfile *out; /* -o semantics: outfile.h */
	FILE *f;
	int io_err; /* first write errno, 0 if none */
	msgpack_packer pk;
	struct trace_header h; /* scalars only (no ops, no provenance) */
	uint64_t n_seq, n_tok;
	struct trace_idset ids; /* sequence id -> its ordinal */
	uint32_t *scratch;      /* byte-swap buffer on big-endian hosts */
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
static void pk_key_le32(struct trace_writer *w, const char *k, const void *src,
                        size_t count)
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
		pk_key_str(pk, "kind", trace_op_kind_name(op->kind));
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
	w->h.target.seq_len = h->target.seq_len; /* trace_seq_check uses it */
	w->h.n_prov = 0;
	w->h.prov = NULL;
	w->h.version = TRACE_FORMAT_VERSION;

	pk = &w->pk;
	msgpack_packer_init(pk, w, wr_cb);
	if (!h->features) {
		/* format 1.0, byte for byte */
		msgpack_pack_map(pk, 11);
		pk_key_str(pk, "type", "header");
		pk_key_str(pk, "magic", TRACE_MAGIC);
		pk_key_u64(pk, "version", TRACE_FORMAT_VERSION);
		pk_key_u64(pk, "lookahead", h->lookahead);
	} else {
		const int runs = (h->features & TRACE_F_ACCEPT_RUNS) != 0;
		const int lookup = (h->features & TRACE_F_DRAFT_LOOKUP) != 0;
		const int cont = trace_header_entropy_full(h);
		uint32_t nf = 0;

		for (uint32_t b = 1; b & TRACE_F_ALL; b <<= 1)
			nf += (h->features & b) != 0;
		/* the ten keys of every header, features, then each feature's */
		msgpack_pack_map(pk, 11u + (cont ? 1u : 0u) + (runs ? 2u : 0u) +
		                             (lookup ? 1u : 0u));
		pk_key_str(pk, "type", "header");
		pk_key_str(pk, "magic", TRACE_MAGIC);
		pk_key_str(pk, "version", "1.1");
		pk_str(pk, "features");
		msgpack_pack_array(pk, nf);
		for (uint32_t b = 1; b & TRACE_F_ALL; b <<= 1)
			if (h->features & b)
				pk_str(pk, trace_feature_name(
				                   (enum trace_feature)b));
		if (cont)
			pk_key_u64(pk, "lookahead", h->lookahead);
		if (runs) {
			pk_key_u64(pk, "accept_run_max", h->run_max);
			pk_key_u64(pk, "tree_tokens", h->tree_tokens);
		}
		if (lookup)
			pk_key_str(pk, "draft_lookup", h->draft_lookup);
	}
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
	if (h->features & TRACE_F_DRAFT_LOOKUP) {
		msgpack_pack_map(pk, 1);
	} else {
		msgpack_pack_map(pk, 2);
		pk_str(pk, "draft");
		pk_model(pk, &h->draft);
	}
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
			util_set_err(err, errlen,
			             "%s: out of memory remembering "
			             "sequence ids",
			             outfile_path(w->out));
			return ret;
		}
		if (ret > 0) {
			util_set_err(err, errlen,
			             "%s: field 'id': duplicate "
			             "sequence id %" PRIu32
			             " (also sequence number %" PRIu64
			             " written)",
			             outfile_path(w->out), s->id, first + 1);
			return -EINVAL;
		}
	}
	pk = &w->pk;
	const int ent = trace_header_has_entropy(&w->h);
	const int cont = trace_header_entropy_full(&w->h);
	const int runs = (w->h.features & TRACE_F_ACCEPT_RUNS) != 0;
	msgpack_pack_map(pk, 5 + (s->tokens ? 1u : 0u) + (ent ? 2u : 0u) +
	                             (cont ? 2u : 0u));
	pk_key_str(pk, "type", "seq");
	pk_key_u64(pk, "id", s->id);
	pk_key_u64(pk, "prompt_len", s->prompt_len);
	pk_key_u64(pk, "n", s->n);
	if (ent) {
		pk_key_le32(w, "entropy", s->entropy, s->n);
		pk_key_le32(w, "top1", s->top1, s->n);
	}
	if (runs)
		pk_key_le32(w, "accept_run", s->accept_run, s->n);
	else
		pk_key_le32(w, "accept", s->accept, s->n);
	if (s->tokens)
		pk_key_le32(w, "tokens", s->tokens, s->n);
	if (cont) {
		pk_key_le32(w, "cont_pos", s->cont_pos, s->n_cont);
		pk_key_le32(w, "cont_entropy", s->cont_entropy,
		            (size_t)s->n_cont * w->h.lookahead);
	}
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
