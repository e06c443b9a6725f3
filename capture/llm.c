/* llm.c - llama2.c checkpoint inference (fp32, one thread), tokenizer,
 * self-speculative draft variants. Follows the reference run.c of the
 * llama2.c project: rmsnorm, RoPE on q and k, grouped-query attention,
 * SwiGLU feed-forward, optional unshared classifier. */
#include "llm.h"
#include "llm_kern.h"
#include "vmath.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLM_AK42_MAGIC 0x616b3432u /* "ak42": llama2.c export version >= 1 */

/* ------------------------------------------------------------------ */
/* file helpers */

static int read_file(const char *path, unsigned char **buf, size_t *len,
                     char *err, size_t errlen)
{
	int ret = 0;
	unsigned char *data = NULL;
	FILE *f = fopen(path, "rb");
	long size;

	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path,
		         strerror(errno));
		goto error;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		ret = -EIO;
		snprintf(err, errlen, "%s: cannot determine file size", path);
		goto error;
	}
	data = malloc(size > 0 ? (size_t)size : 1);
	if (!data) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto error;
	}
	if (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size) {
		ret = -EIO;
		snprintf(err, errlen, "%s: read error", path);
		goto error;
	}
	*buf = data;
	*len = (size_t)size;
	data = NULL;
error:
	free(data);
	if (f)
		fclose(f);
	return ret;
}

static int32_t rd_i32(const unsigned char *p)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	int32_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static float rd_f32(const unsigned char *p)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float r;
	memcpy(&r, &v, sizeof r);
	return r;
}

/* ------------------------------------------------------------------ */
/* kernels */

static const struct llm_kern *g_kern = &llm_kern_base;
static int g_kern_chosen;

const struct llm_kern *llm_kern_select(void)
{
	const char *env = getenv("AHASD_CAPTURE_KERNELS");

	if (g_kern_chosen)
		return g_kern;
	g_kern_chosen = 1;
	vmath_select();
	g_kern = &llm_kern_base;
#ifdef LLM_KERN_AVX2
	__builtin_cpu_init();
	if (env && strcmp(env, "baseline") == 0)
		return g_kern;
	if (__builtin_cpu_supports("avx2"))
		g_kern = &llm_kern_avx2;
	if (__builtin_cpu_supports("avx512f") &&
	    !(env && strcmp(env, "avx2") == 0))
		g_kern = &llm_kern_avx512;
#else
	(void)env;
#endif
	return g_kern;
}

void llm_kern_use(const struct llm_kern *k)
{
	g_kern_chosen = 1;
	g_kern = k;
}

/* ------------------------------------------------------------------ */
/* model */

static size_t kv_dim_of(const struct llm_config *c)
{
	return (size_t)c->dim * (size_t)c->n_kv_heads / (size_t)c->n_heads;
}

/* a row of attention weights: the positions rounded up to a whole 4
 * (llm_kern.h) */
static size_t att_stride(const struct llm_config *c)
{
	return ((size_t)c->seq_len + 3) & ~(size_t)3;
}

/* floats in the file after the header, excluding nothing */
static size_t checkpoint_floats(const struct llm_config *c)
{
	size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
	size_t L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
	size_t kvd = kv_dim_of(c), hs = dim / (size_t)c->n_heads;
	size_t n = V * dim;           /* token embedding */
	n += L * dim;                 /* rms_att */
	n += L * dim * dim * 2;       /* wq, wo */
	n += L * dim * kvd * 2;       /* wk, wv */
	n += L * dim;                 /* rms_ffn */
	n += L * hid * dim * 3;       /* w1, w2, w3 */
	n += dim;                     /* rms_final */
	n += (size_t)c->seq_len * hs; /* freq_cis real + imag (unused) */
	if (!c->shared_classifier)
		n += V * dim;
	return n;
}

static void map_weights(struct llm_model *m)
{
	const struct llm_config *c = &m->cfg;
	size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
	size_t L = (size_t)c->n_layers, kvd = kv_dim_of(c);
	size_t hs = dim / (size_t)c->n_heads;
	const float *p = m->data;

	m->w.tok_emb = p;
	p += (size_t)c->vocab_size * dim;
	m->w.rms_att = p;
	p += L * dim;
	m->w.wq = p;
	p += L * dim * dim;
	m->w.wk = p;
	p += L * dim * kvd;
	m->w.wv = p;
	p += L * dim * kvd;
	m->w.wo = p;
	p += L * dim * dim;
	m->w.rms_ffn = p;
	p += L * dim;
	m->w.w1 = p;
	p += L * dim * hid;
	m->w.w2 = p;
	p += L * hid * dim;
	m->w.w3 = p;
	p += L * dim * hid;
	m->w.rms_final = p;
	p += dim;
	p += (size_t)c->seq_len * hs; /* skip freq_cis_real and freq_cis_imag */
	m->w.wcls = c->shared_classifier ? m->w.tok_emb : p;
}

static size_t packed_floats(size_t rows, size_t cols)
{
	size_t blocks = (rows + LLM_BLOCK_ROWS - 1) / LLM_BLOCK_ROWS;

	return blocks * LLM_BLOCK_ROWS * cols;
}

/* rows x cols row-major -> blocks of LLM_BLOCK_ROWS rows, column by column */
static void pack_matrix(float *dst, const float *w, size_t rows, size_t cols)
{
	for (size_t b = 0; b < rows; b += LLM_BLOCK_ROWS)
		for (size_t j = 0; j < cols; j++)
			for (size_t r = b; r < b + LLM_BLOCK_ROWS; r++)
				*dst++ = r < rows ? w[r * cols + j] : 0.0f;
}

/* n stacked rows x cols matrices (one per layer); returns the end in dst */
static float *pack_stack(float *dst, const float **out, const float *w,
                         size_t n, size_t rows, size_t cols)
{
	*out = dst;
	for (size_t l = 0; l < n; l++) {
		pack_matrix(dst, w + l * rows * cols, rows, cols);
		dst += packed_floats(rows, cols);
	}
	return dst;
}

/* (Re)build m->packed from the weights in m->w: after loading, and after
 * anything that changes the weights (quantization). */
static int pack_weights(struct llm_model *m)
{
	const struct llm_config *c = &m->cfg;
	size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
	size_t L = (size_t)c->n_layers, kvd = kv_dim_of(c);
	size_t V = (size_t)c->vocab_size;
	size_t n = L * (2 * packed_floats(dim, dim) +
	                2 * packed_floats(kvd, dim) +
	                2 * packed_floats(hid, dim) + packed_floats(dim, hid)) +
	           packed_floats(V, dim);
	float *p;

	if (!m->packed)
		m->packed = malloc(n * sizeof(float));
	if (!m->packed)
		return -ENOMEM;
	p = m->packed;
	p = pack_stack(p, &m->pk.wq, m->w.wq, L, dim, dim);
	p = pack_stack(p, &m->pk.wk, m->w.wk, L, kvd, dim);
	p = pack_stack(p, &m->pk.wv, m->w.wv, L, kvd, dim);
	p = pack_stack(p, &m->pk.wo, m->w.wo, L, dim, dim);
	p = pack_stack(p, &m->pk.w1, m->w.w1, L, hid, dim);
	p = pack_stack(p, &m->pk.w2, m->w.w2, L, dim, hid);
	p = pack_stack(p, &m->pk.w3, m->w.w3, L, hid, dim);
	(void)pack_stack(p, &m->pk.wcls, m->w.wcls, 1, V, dim);
	return 0;
}

/* RoPE rotates each pair (i, i + 1) of a head by pos * freq(i), the same
 * angles in every layer and every forward: compute the cos/sin pairs once
 * per position, with the reference's exact float expressions, instead of
 * powf, cosf and sinf per pair per layer per forward. */
static void rope_table_init(struct llm_model *m)
{
	const struct llm_config *c = &m->cfg;
	const int head_size = c->dim / c->n_heads;
	float *r = m->rope;

	for (int pos = 0; pos < c->seq_len; pos++) {
		for (int hd = 0; hd < head_size; hd += 2) {
			float freq = 1.0f / powf(10000.0f,
			                         (float)hd / (float)head_size);
			float val = (float)pos * freq;
			*r++ = cosf(val);
			*r++ = sinf(val);
		}
	}
}

static int alloc_state(struct llm_model *m)
{
	const struct llm_config *c = &m->cfg;
	size_t kvd = kv_dim_of(c);
	size_t cache = (size_t)c->n_layers * (size_t)c->seq_len * kvd;
	size_t blocks = ((size_t)c->seq_len + LLM_BLOCK_ROWS - 1) /
	                LLM_BLOCK_ROWS;

	m->x = calloc((size_t)c->dim, sizeof(float));
	m->x_snap = calloc((size_t)c->dim, sizeof(float));
	m->xb = calloc((size_t)c->dim, sizeof(float));
	m->xb2 = calloc((size_t)c->dim, sizeof(float));
	m->hb = calloc((size_t)c->hidden_dim, sizeof(float));
	m->hb2 = calloc((size_t)c->hidden_dim, sizeof(float));
	m->hexp = calloc((size_t)c->hidden_dim, sizeof(float));
	m->q = calloc((size_t)c->dim, sizeof(float));
	m->k = calloc(kvd, sizeof(float));
	m->att = calloc((size_t)c->n_heads * att_stride(c), sizeof(float));
	m->logits = calloc((size_t)c->vocab_size, sizeof(float));
	/* keys transposed, positions padded to whole blocks: see key_rows() */
	m->kv_stride = blocks * LLM_BLOCK_ROWS;
	m->key_cache = calloc((size_t)c->n_layers * kvd * m->kv_stride,
	                      sizeof(float));
	m->value_cache = calloc(cache, sizeof(float));
	m->rope = malloc((size_t)c->seq_len * (size_t)(c->dim / c->n_heads) *
	                 sizeof(float));
	if (!m->x || !m->x_snap || !m->xb || !m->xb2 || !m->hb || !m->hb2 ||
	    !m->hexp || !m->q || !m->k || !m->att || !m->logits ||
	    !m->key_cache || !m->value_cache || !m->rope)
		return -ENOMEM;
	rope_table_init(m);
	return 0;
}

int llm_load(struct llm_model **out, const char *path, char *err, size_t errlen)
{
	int ret = 0;
	unsigned char *buf = NULL;
	size_t len = 0, need;
	struct llm_model *m = NULL;
	struct llm_config c;
	int32_t h[7];

	*out = NULL;
	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		goto error;
	if (len >= 4 && (uint32_t)rd_i32(buf) == LLM_AK42_MAGIC) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: llama2.c checkpoint version %d (magic \"ak42\") "
		         "is not "
		         "supported; only the legacy version-0 header (7 "
		         "int32, fp32 "
		         "weights) is: re-export with llama2.c export.py "
		         "--version 0",
		         path, len >= 8 ? rd_i32(buf + 4) : -1);
		goto error;
	}
	if (len < sizeof h) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: truncated checkpoint: %zu bytes, the "
		         "header alone needs 28",
		         path, len);
		goto error;
	}
	for (int i = 0; i < 7; i++)
		h[i] = rd_i32(buf + 4 * i);
	c.dim = h[0];
	c.hidden_dim = h[1];
	c.n_layers = h[2];
	c.n_heads = h[3];
	c.n_kv_heads = h[4];
	c.shared_classifier = h[5] > 0;
	c.vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
	c.seq_len = h[6];
	if (c.dim <= 0 || c.dim > 65536 || c.hidden_dim <= 0 ||
	    c.hidden_dim > 1 << 20 || c.n_layers <= 0 ||
	    c.n_layers > LLM_MAX_LAYERS || c.n_heads <= 0 ||
	    c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads ||
	    c.n_heads % c.n_kv_heads != 0 || c.dim % c.n_heads != 0 ||
	    (c.dim / c.n_heads) % 2 != 0 || c.vocab_size <= 0 ||
	    c.vocab_size > 1 << 20 || c.seq_len <= 0 || c.seq_len > 1 << 20) {
		ret = -EINVAL;
		snprintf(
		        err, errlen,
		        "%s: unknown checkpoint header version or corrupt "
		        "header "
		        "(dim=%d hidden_dim=%d n_layers=%d n_heads=%d "
		        "n_kv_heads=%d "
		        "vocab_size=%d seq_len=%d); expected a llama2.c legacy "
		        "version-0 checkpoint",
		        path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
		goto error;
	}
	need = checkpoint_floats(&c);
	if (len - sizeof h < need * sizeof(float)) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: truncated checkpoint: header (dim %d, %d "
		         "layers, vocab %d) needs %zu bytes, file has %zu",
		         path, c.dim, c.n_layers, c.vocab_size,
		         sizeof h + need * sizeof(float), len);
		goto error;
	}
	if (len - sizeof h > need * sizeof(float)) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: %zu bytes more than a legacy version-0 "
		         "checkpoint with this header holds (unknown header "
		         "version?)",
		         path, len - sizeof h - need * sizeof(float));
		goto error;
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		ret = -ENOMEM;
		goto nomem;
	}
	m->cfg = c;
	m->n_floats = need;
	m->data = malloc(need * sizeof(float));
	if (!m->data) {
		ret = -ENOMEM;
		goto nomem;
	}
	for (size_t i = 0; i < need; i++)
		m->data[i] = rd_f32(buf + sizeof h + 4 * i);
	map_weights(m);
	ret = pack_weights(m);
	if (ret)
		goto nomem;
	for (int l = 0; l < c.n_layers; l++)
		m->active[l] = 1;
	m->n_active = c.n_layers;
	m->weight_bits = 32;
	m->last_pos = -1;
	(void)llm_kern_select();
	ret = alloc_state(m);
	if (ret)
		goto nomem;
	*out = m;
	m = NULL;
	goto error;
nomem:
	snprintf(err, errlen, "%s: out of memory", path);
error:
	llm_free(&m);
	free(buf);
	return ret;
}

void llm_free(struct llm_model **pm)
{
	struct llm_model *m;

	if (!pm || !*pm)
		return;
	m = *pm;
	free(m->data);
	free(m->packed);
	free(m->x);
	free(m->x_snap);
	free(m->xb);
	free(m->xb2);
	free(m->hb);
	free(m->hb2);
	free(m->hexp);
	free(m->q);
	free(m->k);
	free(m->att);
	free(m->logits);
	free(m->key_cache);
	free(m->value_cache);
	free(m->rope);
	free(m);
	*pm = NULL;
}

int llm_clone(struct llm_model **out, const struct llm_model *src)
{
	struct llm_model *m = calloc(1, sizeof *m);
	int ret;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->cfg = src->cfg;
	m->w = src->w;
	m->pk = src->pk;
	memcpy(m->active, src->active, sizeof m->active);
	m->n_active = src->n_active;
	m->weight_bits = src->weight_bits;
	m->n_shared = src->n_shared;
	m->snap_layers = src->snap_layers;
	m->last_pos = -1;
	ret = alloc_state(m);
	if (ret) {
		llm_free(&m);
		return ret;
	}
	*out = m;
	return 0;
}

int llm_skip_layers(struct llm_model *m, const char *list, char *err,
                    size_t errlen)
{
	const char *p = list;
	int n = 0;

	if (!list || !*list) {
		snprintf(err, errlen, "--draft-skip-layers: empty layer list");
		return -EINVAL;
	}
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v < 1 || v > m->cfg.n_layers) {
			snprintf(
			        err, errlen,
			        "--draft-skip-layers \"%s\": layers are "
			        "1-based numbers from 1 to %d, comma-separated",
			        list, m->cfg.n_layers);
			return -EINVAL;
		}
		if (m->active[v - 1]) {
			m->active[v - 1] = 0;
			n++;
		}
		p = end;
		if (*p == ',')
			p++;
		else if (*p) {
			snprintf(err, errlen,
			         "--draft-skip-layers \"%s\": unexpected "
			         "'%c'",
			         list, *p);
			return -EINVAL;
		}
	}
	if (m->n_active - n <= 0) {
		snprintf(err, errlen,
		         "--draft-skip-layers \"%s\": skips every layer", list);
		return -EINVAL;
	}
	m->n_active -= n;
	return 0;
}

/* quantize rows x cols row-major matrix in place: groups along each row */
static void quantize_matrix(float *w, size_t rows, size_t cols, int bits)
{
	const float qmax = bits == 8 ? 127.0f : 7.0f;

	for (size_t r = 0; r < rows; r++) {
		float *row = w + r * cols;
		for (size_t g = 0; g < cols; g += LLM_QUANT_GROUP) {
			size_t end = g + LLM_QUANT_GROUP < cols
			                     ? g + LLM_QUANT_GROUP
			                     : cols;
			float amax = 0.0f, scale;
			for (size_t i = g; i < end; i++)
				amax = fmaxf(amax, fabsf(row[i]));
			scale = amax / qmax;
			for (size_t i = g; i < end; i++) {
				float q = scale > 0.0f ? roundf(row[i] / scale)
				                       : 0.0f;
				q = fminf(qmax, fmaxf(-qmax, q));
				row[i] = q * scale;
			}
		}
	}
}

int llm_quantize(struct llm_model *m, int bits, char *err, size_t errlen)
{
	const struct llm_config *c = &m->cfg;
	size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
	size_t L = (size_t)c->n_layers, kvd = kv_dim_of(c);
	size_t V = (size_t)c->vocab_size;

	if (bits != 8 && bits != 4) {
		snprintf(err, errlen,
		         "--draft-quant: %d bits unsupported (int8 or "
		         "int4)",
		         bits);
		return -EINVAL;
	}
	if (m->weight_bits != 32) {
		snprintf(err, errlen, "model already quantized");
		return -EINVAL;
	}
	/* the const views point into m->data: cast back for the in-place pass */
	quantize_matrix((float *)(uintptr_t)m->w.tok_emb, V, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.wq, L * dim, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.wk, L * kvd, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.wv, L * kvd, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.wo, L * dim, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.w1, L * hid, dim, bits);
	quantize_matrix((float *)(uintptr_t)m->w.w2, L * dim, hid, bits);
	quantize_matrix((float *)(uintptr_t)m->w.w3, L * hid, dim, bits);
	if (!c->shared_classifier)
		quantize_matrix((float *)(uintptr_t)m->w.wcls, V, dim, bits);
	m->weight_bits = bits;
	return pack_weights(m); /* same size: reuses the buffer, cannot fail */
}

static uint64_t matrix_bytes(uint64_t rows, uint64_t cols, int bits)
{
	uint64_t groups;

	if (bits == 32)
		return rows * cols * 4;
	groups = rows * ((cols + LLM_QUANT_GROUP - 1) / LLM_QUANT_GROUP);
	return (rows * cols * (uint64_t)bits + 7) / 8 + groups * 4;
}

uint64_t llm_weight_bytes(const struct llm_model *m)
{
	const struct llm_config *c = &m->cfg;
	uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim;
	uint64_t kvd = kv_dim_of(c), V = (uint64_t)c->vocab_size;
	uint64_t La = (uint64_t)m->n_active;
	int b = m->weight_bits;
	uint64_t n = matrix_bytes(V, dim, b); /* embedding */
	n += La * (2 * dim * 4);              /* two norms */
	n += La *
	     (2 * matrix_bytes(dim, dim, b) + 2 * matrix_bytes(kvd, dim, b));
	n += La * (2 * matrix_bytes(hid, dim, b) + matrix_bytes(dim, hid, b));
	n += dim * 4; /* final norm */
	if (!c->shared_classifier)
		n += matrix_bytes(V, dim, b);
	return n;
}

/* ---- op recording ---- */
static void rec_op(struct llm_model *m, const char *name,
                   enum trace_op_kind kind, uint32_t k, uint32_t n,
                   uint32_t heads, uint32_t kv_heads, uint32_t head_dim)
{
	struct llm_oprec *r = m->rec;
	struct trace_op *op;

	if (!r)
		return;
	for (uint32_t i = 0; i < r->n; i++) {
		if (strcmp(r->ops[i].name, name) == 0) {
			r->ops[i].repeat++;
			return;
		}
	}
	if (r->n == sizeof r->ops / sizeof r->ops[0]) {
		r->overflow = 1;
		return;
	}
	op = &r->ops[r->n++];
	memset(op, 0, sizeof *op);
	snprintf(op->name, sizeof op->name, "%s", name);
	op->kind = kind;
	op->k = k;
	op->n = n;
	op->heads = heads;
	op->kv_heads = kv_heads;
	op->head_dim = head_dim;
	op->repeat = 1;
}

static void rmsnorm(float *o, const float *x, const float *w, int n)
{
	float ss = 0.0f;

	for (int j = 0; j < n; j++)
		ss += x[j] * x[j];
	ss /= (float)n;
	ss += 1e-5f;
	ss = 1.0f / sqrtf(ss);
	for (int j = 0; j < n; j++)
		o[j] = w[j] * (ss * x[j]);
}

/* ---- forward pass ---- */

/* rotate the pairs (i, i + 1) of vec[0 .. n) by the angles of one position
 * (cs: the rope table's row, head_size/2 {cos, sin} pairs) */
static void rope_rotate(float *vec, int n, const float *cs, int head_size)
{
	for (int i = 0; i < n; i += 2) {
		float fcr = cs[i % head_size], fci = cs[i % head_size + 1];
		float v0 = vec[i], v1 = vec[i + 1];

		vec[i] = v0 * fcr - v1 * fci;
		vec[i + 1] = v0 * fci + v1 * fcr;
	}
}

/* keys of layer l, kv head g: head_size rows of kv_stride floats, one
 * column per position */
static float *key_rows(const struct llm_model *m, size_t l, int g)
{
	const struct llm_config *c = &m->cfg;
	size_t hs = (size_t)(c->dim / c->n_heads);

	return m->key_cache +
	       ((l * (size_t)c->n_kv_heads + (size_t)g) * hs) * m->kv_stride;
}

/* store m->k (kv_dim floats) as the keys of position pos in layer l */
static void key_store(struct llm_model *m, size_t l, int pos)
{
	const int hs = m->cfg.dim / m->cfg.n_heads;

	for (int g = 0; g < m->cfg.n_kv_heads; g++) {
		float *kt = key_rows(m, l, g) + pos;
		for (int i = 0; i < hs; i++)
			kt[(size_t)i * m->kv_stride] = m->k[g * hs + i];
	}
}

/* multi-head attention of m->q over the rows 0 .. pos of layer l -> m->xb */
static void attention(struct llm_model *m, size_t l, int pos)
{
	const struct llm_config *c = &m->cfg;
	const struct llm_attn a = {
		.q = m->q,
		.seg = { { key_rows(m, l, 0), m->kv_stride,
		           m->value_cache +
		                   l * (size_t)c->seq_len * kv_dim_of(c),
		           pos + 1 } },
		.att = m->att,
		.att_stride = att_stride(c),
		.out = m->xb,
		.n_heads = c->n_heads,
		.n_kv_heads = c->n_kv_heads,
		.head_size = c->dim / c->n_heads,
	};

	g_kern->attention(&a);
}

/* one decoder layer on m->x at pos: attention, then the SwiGLU FFN */
static void layer_forward(struct llm_model *m, size_t l, int pos)
{
	const struct llm_config *p = &m->cfg;
	const struct llm_weights *w = &m->w;
	const struct llm_packed *pk = &m->pk;
	const int dim = p->dim, hid = p->hidden_dim;
	const int kv_dim = (int)kv_dim_of(p);
	const int head_size = dim / p->n_heads;
	const size_t ld = l * (size_t)dim;
	const float *rope = m->rope + (size_t)pos * (size_t)head_size;
	float *vc = m->value_cache +
	            (l * (size_t)p->seq_len + (size_t)pos) * (size_t)kv_dim;
	float *x = m->x;

	rmsnorm(m->xb, x, w->rms_att + ld, dim);
	rec_op(m, "attn_norm", TRACE_OP_NORM, 0, (uint32_t)dim, 0, 0, 0);
	g_kern->matmul(m->q, m->xb,
	               pk->wq + l * packed_floats((size_t)dim, (size_t)dim),
	               dim, dim);
	rec_op(m, "wq", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)dim, 0, 0, 0);
	g_kern->matmul(m->k, m->xb,
	               pk->wk + l * packed_floats((size_t)kv_dim, (size_t)dim),
	               dim, kv_dim);
	rec_op(m, "wk", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)kv_dim, 0, 0,
	       0);
	g_kern->matmul(vc, m->xb,
	               pk->wv + l * packed_floats((size_t)kv_dim, (size_t)dim),
	               dim, kv_dim);
	rec_op(m, "wv", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)kv_dim, 0, 0,
	       0);

	rope_rotate(m->q, dim, rope, head_size);
	rope_rotate(m->k, kv_dim, rope, head_size);
	key_store(m, l, pos);
	rec_op(m, "rope", TRACE_OP_ELEMENTWISE, 0, (uint32_t)(dim + kv_dim), 0,
	       0, 0);

	attention(m, l, pos);
	rec_op(m, "attention", TRACE_OP_ATTENTION, 0, 0, (uint32_t)p->n_heads,
	       (uint32_t)p->n_kv_heads, (uint32_t)head_size);

	g_kern->matmul(m->xb2, m->xb,
	               pk->wo + l * packed_floats((size_t)dim, (size_t)dim),
	               dim, dim);
	rec_op(m, "wo", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)dim, 0, 0, 0);
	for (int i = 0; i < dim; i++)
		x[i] += m->xb2[i];
	rec_op(m, "attn_residual", TRACE_OP_ELEMENTWISE, 0, (uint32_t)dim, 0, 0,
	       0);

	rmsnorm(m->xb, x, w->rms_ffn + ld, dim);
	rec_op(m, "ffn_norm", TRACE_OP_NORM, 0, (uint32_t)dim, 0, 0, 0);
	g_kern->matmul(m->hb, m->xb,
	               pk->w1 + l * packed_floats((size_t)hid, (size_t)dim),
	               dim, hid);
	rec_op(m, "w1", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)hid, 0, 0, 0);
	g_kern->matmul(m->hb2, m->xb,
	               pk->w3 + l * packed_floats((size_t)hid, (size_t)dim),
	               dim, hid);
	rec_op(m, "w3", TRACE_OP_GEMM, (uint32_t)dim, (uint32_t)hid, 0, 0, 0);
	/* SiLU: val * (1 / (1 + expf(-val))), the reference's roundings */
	vexpf_neg(m->hexp, m->hb, hid);
	for (int i = 0; i < hid; i++)
		m->hb[i] *= 1.0f / (1.0f + m->hexp[i]);
	rec_op(m, "silu", TRACE_OP_NONLINEAR, 0, (uint32_t)hid, 0, 0, 0);
	for (int i = 0; i < hid; i++)
		m->hb[i] *= m->hb2[i];
	rec_op(m, "gate_mul", TRACE_OP_ELEMENTWISE, 0, (uint32_t)hid, 0, 0, 0);
	g_kern->matmul(m->xb, m->hb,
	               pk->w2 + l * packed_floats((size_t)dim, (size_t)hid),
	               hid, dim);
	rec_op(m, "w2", TRACE_OP_GEMM, (uint32_t)hid, (uint32_t)dim, 0, 0, 0);
	for (int i = 0; i < dim; i++)
		x[i] += m->xb[i];
	rec_op(m, "ffn_residual", TRACE_OP_ELEMENTWISE, 0, (uint32_t)dim, 0, 0,
	       0);
}

/* final norm and classifier on m->x -> m->logits */
static const float *classify(struct llm_model *m)
{
	const struct llm_config *p = &m->cfg;
	const int dim = p->dim;

	rmsnorm(m->x, m->x, m->w.rms_final, dim);
	rec_op(m, "final_norm", TRACE_OP_NORM, 0, (uint32_t)dim, 0, 0, 0);
	g_kern->matmul(m->logits, m->x, m->pk.wcls, dim, p->vocab_size);
	rec_op(m, "classifier", TRACE_OP_GEMM, (uint32_t)dim,
	       (uint32_t)p->vocab_size, 0, 0, 0);
	/* the capture turns logits into a distribution after every step */
	rec_op(m, "softmax_vocab", TRACE_OP_NONLINEAR, 0,
	       (uint32_t)p->vocab_size, 0, 0, 0);
	return m->logits;
}

const float *llm_forward(struct llm_model *m, int token, int pos)
{
	const struct llm_config *p = &m->cfg;
	const size_t dim = (size_t)p->dim;

	memcpy(m->x, m->w.tok_emb + (size_t)token * dim, dim * sizeof(float));
	rec_op(m, "tok_embedding", TRACE_OP_EMBED, (uint32_t)p->vocab_size,
	       (uint32_t)dim, 0, 0, 0);
	for (size_t l = 0; l < (size_t)p->n_layers; l++) {
		if (m->active[l])
			layer_forward(m, l, pos);
		if (l + 1 == (size_t)m->snap_layers)
			memcpy(m->x_snap, m->x, dim * sizeof(float));
	}
	m->last_token = token;
	m->last_pos = pos;
	return classify(m);
}

/* ---- free-running streams stepped together ---- */

static void kv_copy_row(struct llm_model *draft, const struct llm_model *target,
                        size_t l, int pos);

void llm_batch_free(struct llm_batch *b)
{
	free(b->x);
	free(b->xb);
	free(b->xb2);
	free(b->hb);
	free(b->hb2);
	free(b->hexp);
	free(b->q);
	free(b->k);
	free(b->v);
	free(b->att);
	free(b->logits);
	free(b->keys);
	free(b->values);
	memset(b, 0, sizeof *b);
}

int llm_batch_init(struct llm_batch *b, const struct llm_model *m, int cap,
                   int rows)
{
	const struct llm_config *c = &m->cfg;
	const size_t n = (size_t)cap, dim = (size_t)c->dim;
	const size_t hid = (size_t)c->hidden_dim, kvd = kv_dim_of(c);
	const size_t L = (size_t)c->n_layers;

	memset(b, 0, sizeof *b);
	if (cap < 1 || rows < 1)
		return -EINVAL;
	b->cap = cap;
	b->rows = rows;
	b->kstride = ((size_t)rows + LLM_BLOCK_ROWS - 1) / LLM_BLOCK_ROWS *
	             LLM_BLOCK_ROWS;
	b->x = calloc(n * dim, sizeof(float));
	b->xb = calloc(n * dim, sizeof(float));
	b->xb2 = calloc(n * dim, sizeof(float));
	b->hb = calloc(n * hid, sizeof(float));
	b->hb2 = calloc(n * hid, sizeof(float));
	b->hexp = calloc(n * hid, sizeof(float));
	b->q = calloc(n * dim, sizeof(float));
	b->k = calloc(n * kvd, sizeof(float));
	b->v = calloc(n * kvd, sizeof(float));
	b->att = calloc((size_t)c->n_heads * att_stride(c), sizeof(float));
	b->logits = calloc(n * (size_t)c->vocab_size, sizeof(float));
	b->keys = calloc(n * L * kvd * b->kstride, sizeof(float));
	b->values = calloc(n * L * (size_t)rows * kvd, sizeof(float));
	if (!b->x || !b->xb || !b->xb2 || !b->hb || !b->hb2 || !b->hexp ||
	    !b->q || !b->k || !b->v || !b->att || !b->logits || !b->keys ||
	    !b->values) {
		llm_batch_free(b);
		return -ENOMEM;
	}
	return 0;
}

/* the private key rows of a slot in layer l (kv head 0; kv head g starts
 * g * head_size rows further on), and its value rows */
static float *slot_keys(const struct llm_batch *b, const struct llm_model *m,
                        int slot, size_t l)
{
	return b->keys + ((size_t)slot * (size_t)m->cfg.n_layers + l) *
	                         kv_dim_of(&m->cfg) * b->kstride;
}

static float *slot_values(const struct llm_batch *b, const struct llm_model *m,
                          int slot, size_t l)
{
	return b->values + ((size_t)slot * (size_t)m->cfg.n_layers + l) *
	                           (size_t)b->rows * kv_dim_of(&m->cfg);
}

/* layer l for the n streams of one llm_forward_batch() call: what
 * layer_forward() does for one, each matrix read once for all */
static void layer_forward_batch(struct llm_model *m, struct llm_batch *b,
                                size_t l, const struct llm_step *st, int n)
{
	const struct llm_config *p = &m->cfg;
	const struct llm_weights *w = &m->w;
	const struct llm_packed *pk = &m->pk;
	const int dim = p->dim, hid = p->hidden_dim;
	const int kv_dim = (int)kv_dim_of(p), hs = dim / p->n_heads;
	const size_t ld = l * (size_t)dim, d = (size_t)dim, kd = (size_t)kv_dim;
	const size_t h = (size_t)hid;

	for (int e = 0; e < n; e++)
		rmsnorm(b->xb + e * d, b->x + e * d, w->rms_att + ld, dim);
	g_kern->matmul_n(b->q, d, b->xb, d, pk->wq + l * packed_floats(d, d),
	                 dim, dim, n);
	g_kern->matmul_n(b->k, kd, b->xb, d, pk->wk + l * packed_floats(kd, d),
	                 dim, kv_dim, n);
	g_kern->matmul_n(b->v, kd, b->xb, d, pk->wv + l * packed_floats(kd, d),
	                 dim, kv_dim, n);
	for (int e = 0; e < n; e++) {
		const float *rope = m->rope + (size_t)st[e].pos * (size_t)hs;
		struct llm_model *km = st[e].kv ? st[e].kv : m;
		const float *vc = km->value_cache + l * (size_t)p->seq_len * kd;
		struct llm_attn a = {
			.q = b->q + e * d,
			.att = b->att,
			.att_stride = att_stride(p),
			.out = b->xb + e * d,
			.n_heads = p->n_heads,
			.n_kv_heads = p->n_kv_heads,
			.head_size = hs,
		};

		rope_rotate(b->q + e * d, dim, rope, hs);
		rope_rotate(b->k + e * kd, kv_dim, rope, hs);
		if (st[e].slot < 0) {
			/* teacher-forced: the row at pos of its own cache */
			float *kt = key_rows(km, l, 0) + st[e].pos;

			for (size_t i = 0; i < kd; i++)
				kt[i * km->kv_stride] = b->k[e * kd + i];
			memcpy(km->value_cache + (l * (size_t)p->seq_len +
			                          (size_t)st[e].pos) *
			                                 kd,
			       b->v + e * kd, kd * sizeof(float));
			a.seg[0] = (struct llm_kv_seg){ key_rows(km, l, 0),
				                        km->kv_stride, vc,
				                        st[e].pos + 1 };
		} else {
			const int r = st[e].pos - st[e].prefix;
			float *kt = slot_keys(b, m, st[e].slot, l);
			float *vt = slot_values(b, m, st[e].slot, l);

			for (size_t i = 0; i < kd; i++)
				kt[i * b->kstride + (size_t)r] =
				        b->k[e * kd + i];
			memcpy(vt + (size_t)r * kd, b->v + e * kd,
			       kd * sizeof(float));
			a.seg[0] = (struct llm_kv_seg){ key_rows(km, l, 0),
				                        km->kv_stride, vc,
				                        st[e].prefix };
			a.seg[1] = (struct llm_kv_seg){ kt, b->kstride, vt,
				                        r + 1 };
		}
		g_kern->attention(&a);
	}
	g_kern->matmul_n(b->xb2, d, b->xb, d, pk->wo + l * packed_floats(d, d),
	                 dim, dim, n);
	for (size_t i = 0; i < (size_t)n * d; i++)
		b->x[i] += b->xb2[i];
	for (int e = 0; e < n; e++)
		rmsnorm(b->xb + e * d, b->x + e * d, w->rms_ffn + ld, dim);
	g_kern->matmul_n(b->hb, h, b->xb, d, pk->w1 + l * packed_floats(h, d),
	                 dim, hid, n);
	g_kern->matmul_n(b->hb2, h, b->xb, d, pk->w3 + l * packed_floats(h, d),
	                 dim, hid, n);
	vexpf_neg(b->hexp, b->hb, n * hid);
	for (size_t i = 0; i < (size_t)n * h; i++) {
		b->hb[i] *= 1.0f / (1.0f + b->hexp[i]);
		b->hb[i] *= b->hb2[i];
	}
	g_kern->matmul_n(b->xb, d, b->hb, h, pk->w2 + l * packed_floats(d, h),
	                 hid, dim, n);
	for (size_t i = 0; i < (size_t)n * d; i++)
		b->x[i] += b->xb[i];
}

void llm_forward_batch(struct llm_model *m, struct llm_batch *b,
                       const struct llm_step *st, int n)
{
	const struct llm_config *p = &m->cfg;
	const size_t dim = (size_t)p->dim;
	const int after = st[0].after != NULL;
	const size_t first = after ? (size_t)m->n_shared : 0;

	assert(n >= 1 && n <= b->cap);
	for (int e = 0; e < n; e++) {
		struct llm_model *km = st[e].kv ? st[e].kv : m;

		assert(st[e].pos >= 0 && st[e].pos < p->seq_len);
		assert((st[e].after != NULL) == after);
		if (st[e].slot < 0) {
			assert(km->pk.wq == m->pk.wq &&
			       km->n_shared == m->n_shared);
		} else {
			assert(st[e].slot < b->cap && !after);
			assert(st[e].prefix >= 0 && st[e].pos >= st[e].prefix &&
			       st[e].pos - st[e].prefix < b->rows);
		}
		if (after && first > 0) {
			/* as llm_forward_after(): the shared layers' output and KV
			 * rows are the target's of this token and position */
			assert(st[e].slot < 0 &&
			       st[e].after->last_pos == st[e].pos &&
			       st[e].after->snap_layers == m->n_shared);
			memcpy(b->x + e * dim, st[e].after->x_snap,
			       dim * sizeof(float));
			for (size_t l = 0; l < first; l++)
				kv_copy_row(km, st[e].after, l, st[e].pos);
		} else {
			memcpy(b->x + e * dim,
			       m->w.tok_emb + (size_t)st[e].token * dim,
			       dim * sizeof(float));
		}
	}
	for (size_t l = first; l < (size_t)p->n_layers; l++) {
		if (m->active[l])
			layer_forward_batch(m, b, l, st, n);
		for (int e = 0; e < n; e++)
			if (st[e].slot < 0 && st[e].kv &&
			    l + 1 == (size_t)st[e].kv->snap_layers)
				memcpy(st[e].kv->x_snap, b->x + e * dim,
				       dim * sizeof(float));
	}
	for (int e = 0; e < n; e++) {
		rmsnorm(b->x + e * dim, b->x + e * dim, m->w.rms_final, p->dim);
		if (st[e].slot < 0 && st[e].kv) {
			st[e].kv->last_token = st[e].token;
			st[e].kv->last_pos = st[e].pos;
		}
	}
	g_kern->matmul_n(b->logits, (size_t)p->vocab_size, b->x, dim,
	                 m->pk.wcls, p->dim, p->vocab_size, n);
}

/* ---- a draft that reuses the target's leading layers ---- */

static int same_floats(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof(float)) == 0;
}

/* layer l of a and b (same shapes) holds bit-identical weights */
static int same_layer(const struct llm_model *a, const struct llm_model *b,
                      size_t l)
{
	const struct llm_config *c = &a->cfg;
	const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim;
	const size_t kvd = kv_dim_of(c), dd = dim * dim, dk = dim * kvd;
	const size_t dh = dim * hid;

	return same_floats(a->w.rms_att + l * dim, b->w.rms_att + l * dim,
	                   dim) &&
	       same_floats(a->w.wq + l * dd, b->w.wq + l * dd, dd) &&
	       same_floats(a->w.wk + l * dk, b->w.wk + l * dk, dk) &&
	       same_floats(a->w.wv + l * dk, b->w.wv + l * dk, dk) &&
	       same_floats(a->w.wo + l * dd, b->w.wo + l * dd, dd) &&
	       same_floats(a->w.rms_ffn + l * dim, b->w.rms_ffn + l * dim,
	                   dim) &&
	       same_floats(a->w.w1 + l * dh, b->w.w1 + l * dh, dh) &&
	       same_floats(a->w.w2 + l * dh, b->w.w2 + l * dh, dh) &&
	       same_floats(a->w.w3 + l * dh, b->w.w3 + l * dh, dh);
}

/* When every layer the draft runs, and its classifier, hold the target's
 * weights (a skip-layer draft of the same checkpoint), the draft reads the
 * target's packed matrices and frees its own copy: the two models then
 * stream one set of weights through the cache instead of two. Called with
 * the shared prefix already established (n > 0: same shapes and
 * embedding). */
static void share_packed(struct llm_model *target, struct llm_model *draft,
                         int n)
{
	const struct llm_config *c = &draft->cfg;

	if (n == 0 || draft->packed == NULL ||
	    target->cfg.n_layers != c->n_layers ||
	    target->cfg.shared_classifier != c->shared_classifier)
		return;
	for (size_t l = 0; l < (size_t)c->n_layers; l++)
		if (draft->active[l] && !same_layer(target, draft, l))
			return;
	if (!same_floats(target->w.wcls, draft->w.wcls,
	                 (size_t)c->vocab_size * (size_t)c->dim))
		return;
	free(draft->packed);
	draft->packed = NULL;
	draft->pk = target->pk;
}

int llm_share_prefix(struct llm_model *target, struct llm_model *draft)
{
	const struct llm_config *a = &target->cfg, *b = &draft->cfg;
	const int layers = a->n_layers < b->n_layers ? a->n_layers
	                                             : b->n_layers;
	int n = 0;

	if (a->dim == b->dim && a->hidden_dim == b->hidden_dim &&
	    a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads &&
	    a->vocab_size == b->vocab_size &&
	    same_floats(target->w.tok_emb, draft->w.tok_emb,
	                (size_t)a->vocab_size * (size_t)a->dim))
		while (n < layers && target->active[n] && draft->active[n] &&
		       same_layer(target, draft, (size_t)n))
			n++;
	target->snap_layers = n;
	draft->n_shared = n;
	share_packed(target, draft, n);
	return n;
}

/* copy the target's KV rows of layer l at pos into the draft's cache */
static void kv_copy_row(struct llm_model *draft, const struct llm_model *target,
                        size_t l, int pos)
{
	const struct llm_config *c = &draft->cfg;
	const size_t kvd = kv_dim_of(c), hs = (size_t)(c->dim / c->n_heads);

	for (int g = 0; g < c->n_kv_heads; g++) {
		float *dst = key_rows(draft, l, g) + pos;
		const float *src = key_rows(target, l, g) + pos;
		for (size_t i = 0; i < hs; i++)
			dst[i * draft->kv_stride] = src[i * target->kv_stride];
	}
	memcpy(draft->value_cache +
	               (l * (size_t)c->seq_len + (size_t)pos) * kvd,
	       target->value_cache +
	               (l * (size_t)target->cfg.seq_len + (size_t)pos) * kvd,
	       kvd * sizeof(float));
}

const float *llm_forward_after(struct llm_model *draft,
                               const struct llm_model *target)
{
	const int pos = target->last_pos;
	const size_t n = (size_t)draft->n_shared;

	assert(pos >= 0);
	if (n == 0)
		return llm_forward(draft, target->last_token, pos);
	assert(target->snap_layers == draft->n_shared);
	/* The shared layers saw the same token, weights and KV rows 0 .. pos - 1
	 * (all copied here, step by step, or computed by the draft itself from
	 * identical inputs), through the same code: their outputs are the
	 * target's, bit for bit. */
	memcpy(draft->x, target->x_snap,
	       (size_t)draft->cfg.dim * sizeof(float));
	for (size_t l = 0; l < n; l++)
		kv_copy_row(draft, target, l, pos);
	for (size_t l = n; l < (size_t)draft->cfg.n_layers; l++)
		if (draft->active[l])
			layer_forward(draft, l, pos);
	draft->last_token = target->last_token;
	draft->last_pos = pos;
	return classify(draft);
}

int llm_describe(struct llm_model *m, const char *name, struct trace_model *tm,
                 char *err, size_t errlen)
{
	struct llm_oprec rec;

	memset(&rec, 0, sizeof rec);
	memset(tm, 0, sizeof *tm);
	m->rec = &rec;
	(void)llm_forward(m, LLM_BOS, 0);
	m->rec = NULL;
	if (rec.overflow) {
		snprintf(err, errlen, "%s: too many operators", name);
		return -EOVERFLOW;
	}
	snprintf(tm->name, sizeof tm->name, "%s", name);
	tm->dim = (uint32_t)m->cfg.dim;
	tm->hidden_dim = (uint32_t)m->cfg.hidden_dim;
	tm->n_layers = (uint32_t)m->n_active;
	tm->n_heads = (uint32_t)m->cfg.n_heads;
	tm->n_kv_heads = (uint32_t)m->cfg.n_kv_heads;
	tm->vocab_size = (uint32_t)m->cfg.vocab_size;
	tm->seq_len = (uint32_t)m->cfg.seq_len;
	tm->weight_bits = (uint32_t)m->weight_bits;
	tm->weight_bytes = llm_weight_bytes(m);
	tm->ops = calloc(rec.n, sizeof *tm->ops);
	if (!tm->ops) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(tm->ops, rec.ops, rec.n * sizeof *tm->ops);
	tm->n_ops = rec.n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* tokenizer */

struct tok_index {
	const char *str;
	int id;
};

static int cmp_tok(const void *a, const void *b)
{
	return strcmp(((const struct tok_index *)a)->str,
	              ((const struct tok_index *)b)->str);
}

int llm_tokenizer_load(struct llm_tokenizer **out, const char *path,
                       int vocab_size, char *err, size_t errlen)
{
	int ret = 0;
	unsigned char *buf = NULL;
	size_t len = 0, off, count = 0;
	struct llm_tokenizer *t = NULL;

	*out = NULL;
	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		goto error;
	if (len < 4) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: truncated tokenizer (%zu bytes)",
		         path, len);
		goto error;
	}
	/* count entries: float score, int32 length, bytes */
	for (off = 4; off < len; count++) {
		int32_t l;
		if (len - off < 8) {
			ret = -EINVAL;
			snprintf(err, errlen,
			         "%s: truncated tokenizer entry %zu at byte "
			         "%zu",
			         path, count, off);
			goto error;
		}
		l = rd_i32(buf + off + 4);
		if (l < 0 || (size_t)l > len - off - 8) {
			ret = -EINVAL;
			snprintf(err, errlen,
			         "%s: tokenizer entry %zu at byte %zu has "
			         "bad length %d (truncated or not a llama2.c "
			         "tokenizer)",
			         path, count, off, l);
			goto error;
		}
		off += 8 + (size_t)l;
	}
	if (count != (size_t)vocab_size) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: tokenizer holds %zu tokens but the model's "
		         "vocab_size is %d (tokenizer of another model?)",
		         path, count, vocab_size);
		goto error;
	}
	t = calloc(1, sizeof *t);
	if (!t) {
		ret = -ENOMEM;
		goto nomem;
	}
	t->vocab_size = vocab_size;
	t->vocab = calloc((size_t)vocab_size, sizeof *t->vocab);
	t->scores = calloc((size_t)vocab_size, sizeof *t->scores);
	t->sorted = calloc((size_t)vocab_size, sizeof *t->sorted);
	if (!t->vocab || !t->scores || !t->sorted) {
		ret = -ENOMEM;
		goto nomem;
	}
	off = 4;
	for (int i = 0; i < vocab_size; i++) {
		size_t l = (size_t)rd_i32(buf + off + 4);
		t->scores[i] = rd_f32(buf + off);
		t->vocab[i] = malloc(l + 1);
		if (!t->vocab[i]) {
			ret = -ENOMEM;
			goto nomem;
		}
		memcpy(t->vocab[i], buf + off + 8, l);
		t->vocab[i][l] = '\0';
		if (strlen(t->vocab[i]) > t->max_token_length)
			t->max_token_length = (unsigned)strlen(t->vocab[i]);
		t->sorted[i].str = t->vocab[i];
		t->sorted[i].id = i;
		off += 8 + l;
	}
	qsort(t->sorted, (size_t)vocab_size, sizeof *t->sorted, cmp_tok);
	for (int i = 0; i < 256; i++) {
		t->byte_pieces[i * 2] = (char)i;
		t->byte_pieces[i * 2 + 1] = '\0';
	}
	*out = t;
	t = NULL;
	goto error;
nomem:
	snprintf(err, errlen, "%s: out of memory", path);
error:
	llm_tokenizer_free(&t);
	free(buf);
	return ret;
}

void llm_tokenizer_free(struct llm_tokenizer **pt)
{
	struct llm_tokenizer *t;

	if (!pt || !*pt)
		return;
	t = *pt;
	if (t->vocab)
		for (int i = 0; i < t->vocab_size; i++)
			free(t->vocab[i]);
	free(t->vocab);
	free(t->scores);
	free(t->sorted);
	free(t);
	*pt = NULL;
}

static int lookup(const struct llm_tokenizer *t, const char *s)
{
	struct tok_index key = { .str = s, .id = 0 };
	const struct tok_index *r = bsearch(&key, t->sorted,
	                                    (size_t)t->vocab_size,
	                                    sizeof *t->sorted, cmp_tok);
	return r ? r->id : -1;
}

static int byte_token(const struct llm_tokenizer *t, unsigned char b)
{
	int id = (int)b + 3; /* llama2.c byte fallback: <0x00> is token 3 */
	return id < t->vocab_size ? id : 0;
}

int llm_encode(const struct llm_tokenizer *t, const char *text, int *tokens,
               size_t cap)
{
	size_t n = 0, slen = 0, tl = strlen(text);
	char *sb = malloc(2 * (size_t)t->max_token_length + 8);

	if (!sb)
		return -ENOMEM;
	if (cap < tl + 3) {
		free(sb);
		return -ENOSPC;
	}
	tokens[n++] = LLM_BOS;
	if (text[0] != '\0') {
		int id = lookup(t, " ");
		tokens[n++] = id >= 0 ? id : byte_token(t, ' ');
	}
	for (const char *c = text; *c; c++) {
		int id;
		if (((unsigned char)*c & 0xC0) != 0x80)
			slen = 0;
		sb[slen++] = *c;
		sb[slen] = '\0';
		if (((unsigned char)c[1] & 0xC0) == 0x80 && slen < 4)
			continue;
		id = lookup(t, sb);
		if (id >= 0)
			tokens[n++] = id;
		else
			for (size_t i = 0; i < slen; i++)
				tokens[n++] = byte_token(t,
				                         (unsigned char)sb[i]);
		slen = 0;
	}
	for (;;) {
		float best = -1e10f;
		int best_id = -1;
		size_t best_i = 0;
		for (size_t i = 0; i + 1 < n; i++) {
			int id;
			snprintf(sb, 2 * (size_t)t->max_token_length + 8,
			         "%s%s", t->vocab[tokens[i]],
			         t->vocab[tokens[i + 1]]);
			id = lookup(t, sb);
			if (id >= 0 && t->scores[id] > best) {
				best = t->scores[id];
				best_id = id;
				best_i = i;
			}
		}
		if (best_id < 0)
			break;
		tokens[best_i] = best_id;
		for (size_t i = best_i + 1; i + 1 < n; i++)
			tokens[i] = tokens[i + 1];
		n--;
	}
	free(sb);
	return (int)n;
}

const char *llm_decode(const struct llm_tokenizer *t, int prev, int token)
{
	const char *piece = t->vocab[token];
	unsigned char b;

	if (prev == LLM_BOS && piece[0] == ' ')
		piece++;
	if (sscanf(piece, "<0x%02hhX>", &b) == 1)
		piece = t->byte_pieces + b * 2;
	return piece;
}

/* ------------------------------------------------------------------ */
/* distributions */

/* exp and log a chunk at a time (vmath.h: the C library's values) */
#define LLM_CHUNK 256

/* the largest of x[0 .. n) as a double, as llm_softmax's loop "x[i] >
 * max replaces it" finds it (a NaN wins only as x[0]), in four running
 * maxima: only which of +0 and -0 wins a tie can differ, and x - max then
 * differs at most in the sign of a zero, which exp maps to 1 either way */
static double max_double(const float *x, int n)
{
	double m0 = x[0], m1 = x[0], m2 = x[0], m3 = x[0];
	int i = 1;

	for (; i + 4 <= n; i += 4) {
		m0 = x[i] > m0 ? x[i] : m0;
		m1 = x[i + 1] > m1 ? x[i + 1] : m1;
		m2 = x[i + 2] > m2 ? x[i + 2] : m2;
		m3 = x[i + 3] > m3 ? x[i + 3] : m3;
	}
	for (; i < n; i++)
		m0 = x[i] > m0 ? x[i] : m0;
	m0 = m1 > m0 ? m1 : m0;
	m0 = m2 > m0 ? m2 : m0;
	return m3 > m0 ? m3 : m0;
}

void llm_softmax(float *probs, const float *logits, int n, double temperature)
{
	double max = max_double(logits, n), sum = 0.0, e[LLM_CHUNK];

	for (int i0 = 0; i0 < n; i0 += LLM_CHUNK) {
		const int m = n - i0 < LLM_CHUNK ? n - i0 : LLM_CHUNK;

		if (temperature == 1.0) /* x / 1.0 is x, bit for bit */
			for (int k = 0; k < m; k++)
				e[k] = (double)logits[i0 + k] - max;
		else
			for (int k = 0; k < m; k++)
				e[k] = ((double)logits[i0 + k] - max) /
				       temperature;
		vexp(e, e, m);
		for (int k = 0; k < m; k++) {
			probs[i0 + k] = (float)e[k];
			sum += e[k];
		}
	}
	for (int i = 0; i < n; i++)
		probs[i] = (float)((double)probs[i] / sum);
}

int llm_greedy_token(const float *logits, int n, float *probs)
{
	float best = logits[0], second = -INFINITY;
	int bi = 0, nan = logits[0] != logits[0];

	for (int i = 1; i < n; i++) {
		const float l = logits[i];

		if (l > best) {
			second = best;
			best = l;
			bi = i;
		} else if (l < best && l > second) {
			second = l;
		}
		nan |= l != l;
	}
	/* l* - l2 > 2^-20: exp(l2 - l*) < 1 - 2^-20 rounds to a float at
	 * least 2^-21 below the 1 of the largest, and after the division by
	 * the sum (>= 1, <= n) at least four float steps remain between the
	 * two probabilities: the largest is l*'s alone */
	if (!nan && isfinite(best) && (double)best - (double)second > 0x1p-20)
		return bi;
	llm_softmax(probs, logits, n, 1.0);
	return llm_argmax(probs, n);
}

static const float *g_sort_probs; /* qsort has no context argument */

static int cmp_prob_desc(const void *a, const void *b)
{
	int ia = *(const int *)a, ib = *(const int *)b;
	float pa = g_sort_probs[ia], pb = g_sort_probs[ib];

	if (pa != pb)
		return pa > pb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

void llm_top_p(float *probs, int n, double top_p, int *idx)
{
	double cum = 0.0, sum = 0.0;
	int keep = n;

	if (top_p >= 1.0)
		return;
	for (int i = 0; i < n; i++)
		idx[i] = i;
	g_sort_probs = probs;
	qsort(idx, (size_t)n, sizeof *idx, cmp_prob_desc);
	g_sort_probs = NULL;
	for (int i = 0; i < n; i++) {
		cum += probs[idx[i]];
		if (cum >= top_p) {
			keep = i + 1;
			break;
		}
	}
	for (int i = keep; i < n; i++)
		probs[idx[i]] = 0.0f;
	for (int i = 0; i < keep; i++)
		sum += probs[idx[i]];
	for (int i = 0; i < keep; i++)
		probs[idx[i]] = (float)((double)probs[idx[i]] / sum);
}

/* The first index of the largest value, as the loop "v[i] > v[best]
 * replaces best" finds it: the largest value first, in four running
 * maxima (a NaN never wins unless it is v[0], which then stays best), then
 * the first index that holds it (equal values, +0 and -0 included, never
 * replace the first of them). */
int llm_argmax(const float *v, int n)
{
	float m0 = v[0], m1 = v[0], m2 = v[0], m3 = v[0];
	int i = 1;

	for (; i + 4 <= n; i += 4) {
		m0 = v[i] > m0 ? v[i] : m0;
		m1 = v[i + 1] > m1 ? v[i + 1] : m1;
		m2 = v[i + 2] > m2 ? v[i + 2] : m2;
		m3 = v[i + 3] > m3 ? v[i + 3] : m3;
	}
	for (; i < n; i++)
		m0 = v[i] > m0 ? v[i] : m0;
	m0 = m1 > m0 ? m1 : m0;
	m0 = m2 > m0 ? m2 : m0;
	m0 = m3 > m0 ? m3 : m0;
	for (i = 0; i < n; i++)
		if (v[i] == m0)
			return i;
	return 0; /* v[0] is NaN */
}

double llm_entropy(const float *p, int n)
{
	double h = 0.0, lg[LLM_CHUNK];

	for (int i0 = 0; i0 < n; i0 += LLM_CHUNK) {
		const int m = n - i0 < LLM_CHUNK ? n - i0 : LLM_CHUNK;

		vlogf(lg, p + i0, m);
		for (int k = 0; k < m; k++)
			if (p[i0 + k] > 0.0f)
				h -= (double)p[i0 + k] * lg[k];
	}
	return h;
}

int llm_sample(const float *p, int n, double u)
{
	double cdf = 0.0;
	int last = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] <= 0.0f)
			continue;
		cdf += p[i];
		last = i;
		if (u < cdf)
			return i;
	}
	return last; /* rounding: u beyond the accumulated mass */
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

double llm_rng_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t stream)
{
	uint64_t h = splitmix64(seed);
	h = splitmix64(h ^ a);
	h = splitmix64(h ^ (b * 0x100000001b3ull));
	h = splitmix64(h ^ (stream + 0x51ed27u));
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
