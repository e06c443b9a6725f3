/* models.c - model-architecture presets: parse replay/models/NAME.ini and
 * build the operator list of an OPT-, LLaMA- or PaLM-style decoder.
 *
 * Operator lists (per forward pass; repeat = n_layers for the layer ops):
 *   llama: trace_model_llama_ops() (RMSNorm, q/k/v/o, RoPE, attention,
 *          SwiGLU w1/w3/w2, untied classifier).
 *   opt:   token + learned position embedding (max_positions + 2 rows, OPT
 *          offsets positions by 2), pre-LayerNorm, q/k/v/o, attention, fc1
 *          (dim x ffn_dim), ReLU, fc2, final LayerNorm, LM head (tied).
 *   palm:  one LayerNorm feeding attention and FFN in parallel, q/k/v/o
 *          with multi-query K/V (kv_heads = 1, head size 256), RoPE, SwiGLU
 *          w1/w3/w2, one residual add of both branches, tied LM head.
 * Biases and norm gains are not operators' weights here (< 0.2 % of any of
 * these models); weight_bytes counts the stored matrices, a tied LM head
 * once.
 */
#include "models.h"
#include "model_ops.h"
#include "ini.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

enum model_arch { ARCH_LLAMA = 0, ARCH_OPT, ARCH_PALM };

struct model_spec {
	char name[TRACE_NAME_MAX];
	int arch; /* -1 until set */
	uint32_t dim, ffn_dim, n_layers, n_heads, n_kv_heads, head_dim;
	uint32_t vocab_size, max_positions, weight_bits;
	int tied; /* -1 until set */
};

const char *model_preset_dir(void)
{
	return util_exe_in_build_tree() ? AHASD_BUILD_MODEL_DIR
	                                : AHASD_MODEL_DIR;
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || x < lo || x > hi)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static const struct {
	const char *key;
	size_t off;
	uint32_t lo, hi;
} u32_keys[] = {
	{ "dim", offsetof(struct model_spec, dim), 1, TRACE_MAX_DIM },
	{ "ffn_dim", offsetof(struct model_spec, ffn_dim), 1,
	  TRACE_MAX_HIDDEN_DIM },
	{ "n_layers", offsetof(struct model_spec, n_layers), 1,
	  TRACE_MAX_LAYERS },
	{ "n_heads", offsetof(struct model_spec, n_heads), 1, TRACE_MAX_HEADS },
	{ "n_kv_heads", offsetof(struct model_spec, n_kv_heads), 1,
	  TRACE_MAX_HEADS },
	{ "head_dim", offsetof(struct model_spec, head_dim), 1,
	  TRACE_MAX_HEAD_DIM },
	{ "vocab_size", offsetof(struct model_spec, vocab_size), 1,
	  TRACE_MAX_VOCAB },
	{ "max_positions", offsetof(struct model_spec, max_positions), 1,
	  TRACE_MAX_SEQ_LEN },
	{ "weight_bits", offsetof(struct model_spec, weight_bits), 1, 32 },
};

static int set_key(struct model_spec *s, const char *k, const char *v,
                   char *why, size_t whylen)
{
	if (!strcmp(k, "name")) {
		if (!*v || strlen(v) >= sizeof s->name) {
			snprintf(why, whylen,
			         "expected a name of 1..%zu "
			         "characters",
			         sizeof s->name - 1);
			return -1;
		}
		snprintf(s->name, sizeof s->name, "%s", v);
		return 0;
	}
	if (!strcmp(k, "arch")) {
		static const char *const names[] = { "llama", "opt", "palm" };
		for (int i = 0; i < 3; i++)
			if (!strcmp(v, names[i])) {
				s->arch = i;
				return 0;
			}
		snprintf(why, whylen, "expected llama, opt or palm");
		return -1;
	}
	if (!strcmp(k, "tied_embeddings")) {
		if (strcmp(v, "0") && strcmp(v, "1")) {
			snprintf(why, whylen, "expected 0 or 1");
			return -1;
		}
		s->tied = v[0] == '1';
		return 0;
	}
	for (size_t i = 0; i < sizeof u32_keys / sizeof *u32_keys; i++) {
		if (strcmp(k, u32_keys[i].key))
			continue;
		uint32_t *dst = (uint32_t *)((char *)s + u32_keys[i].off);
		if (parse_u32(v, u32_keys[i].lo, u32_keys[i].hi, dst)) {
			snprintf(why, whylen, "expected an integer in [%u, %u]",
			         u32_keys[i].lo, u32_keys[i].hi);
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen, "unknown key");
	return -1;
}

struct spec_reader {
	struct model_spec *s;
	int in_model;
};

static int on_item(void *user, const struct ini_item *it, char *why,
                   size_t whylen)
{
	struct spec_reader *R = user;
	if (!it->key) {
		R->in_model = !strcmp(it->section, "model") && !*it->name;
		if (!R->in_model) {
			snprintf(why, whylen,
			         "unknown section [%s%s%s] (expected "
			         "[model])",
			         it->section, *it->name ? " " : "", it->name);
			return -1;
		}
		return 0;
	}
	if (!R->in_model) {
		snprintf(why, whylen, "expected 'key = value' in [model]");
		return -1;
	}
	char w[128];
	if (set_key(R->s, it->key, it->value, w, sizeof w)) {
		snprintf(why, whylen, "'%s': %s", it->value, w);
		return -1;
	}
	return 0;
}

static int parse_file(struct model_spec *s, const char *path, char *err,
                      size_t errlen)
{
	struct spec_reader R = { s, 0 };
	int rc = ini_parse_file(path, on_item, &R, err, errlen);
	if (rc && rc != -EINVAL) {
		/* name the file as a model preset */
		char tmp[512];
		snprintf(tmp, sizeof tmp, "model preset %s", err);
		util_set_err(err, errlen, "%s", tmp);
		return rc == -ENOENT ? -ENOENT : rc;
	}
	return rc;
}

static int check_spec(struct model_spec *s, const char *path, char *err,
                      size_t errlen)
{
	static const char *const req[] = { "dim",          "ffn_dim",
		                           "n_layers",     "n_heads",
		                           "n_kv_heads",   "vocab_size",
		                           "max_positions" };
	const uint32_t vals[] = { s->dim,          s->ffn_dim,    s->n_layers,
		                  s->n_heads,      s->n_kv_heads, s->vocab_size,
		                  s->max_positions };
	if (!s->name[0]) {
		util_set_err(err, errlen, "%s: missing key 'name'", path);
		return -EINVAL;
	}
	if (s->arch < 0) {
		util_set_err(err, errlen, "%s: missing key 'arch'", path);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof req / sizeof *req; i++)
		if (!vals[i]) {
			util_set_err(err, errlen, "%s: missing key '%s'", path,
			             req[i]);
			return -EINVAL;
		}
	if (s->tied < 0) {
		util_set_err(err, errlen, "%s: missing key 'tied_embeddings'",
		             path);
		return -EINVAL;
	}
	if (!s->weight_bits)
		s->weight_bits = 8;
	if (!s->head_dim) {
		if (s->dim % s->n_heads) {
			util_set_err(err, errlen,
			             "%s: dim %u is not a multiple of "
			             "n_heads %u (give head_dim)",
			             path, s->dim, s->n_heads);
			return -EINVAL;
		}
		s->head_dim = s->dim / s->n_heads;
	}
	if (s->n_heads % s->n_kv_heads) {
		util_set_err(err, errlen,
		             "%s: n_heads %u is not a multiple of "
		             "n_kv_heads %u",
		             path, s->n_heads, s->n_kv_heads);
		return -EINVAL;
	}
	if (s->arch == ARCH_LLAMA && s->head_dim * s->n_heads != s->dim) {
		util_set_err(err, errlen,
		             "%s: arch llama needs head_dim x n_heads "
		             "== dim",
		             path);
		return -EINVAL;
	}
	if ((uint64_t)s->n_heads * s->head_dim > UINT32_MAX / 2) {
		util_set_err(err, errlen, "%s: n_heads x head_dim too large",
		             path);
		return -EINVAL;
	}
	return 0;
}

/* Stored weight elements: every gemm/embed matrix once per repeat; a tied
 * LM head (the last op, reading the token embedding) is not stored again. */
static uint64_t weight_elems(const struct trace_model *m, int tied)
{
	uint64_t w = 0;
	for (uint32_t i = 0; i < m->n_ops; i++) {
		const struct trace_op *op = &m->ops[i];
		if (op->kind == TRACE_OP_GEMM || op->kind == TRACE_OP_EMBED)
			w += (uint64_t)op->k * op->n * op->repeat;
	}
	if (tied && m->n_ops) {
		const struct trace_op *head = &m->ops[m->n_ops - 1];
		w -= (uint64_t)head->k * head->n * head->repeat;
	}
	return w;
}

static int build_model(struct trace_model *m, const struct model_spec *s)
{
	enum { MAX_OPS = 24 };
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", s->name);
	m->dim = s->dim;
	m->hidden_dim = s->ffn_dim;
	m->n_layers = s->n_layers;
	m->n_heads = s->n_heads;
	m->n_kv_heads = s->n_kv_heads;
	m->vocab_size = s->vocab_size;
	m->seq_len = s->max_positions;
	m->weight_bits = s->weight_bits;
	if (s->arch == ARCH_LLAMA) {
		int rc = trace_model_llama_ops(m);
		if (rc < 0)
			return rc;
	} else {
		m->ops = calloc(MAX_OPS, sizeof *m->ops);
		if (!m->ops)
			return -ENOMEM;
		const struct model_shape sh = {
			.dim = s->dim,
			.ffn_dim = s->ffn_dim,
			.n_layers = s->n_layers,
			.n_heads = s->n_heads,
			.n_kv_heads = s->n_kv_heads,
			.head_dim = s->head_dim,
			.vocab_size = s->vocab_size,
			.max_positions = s->max_positions,
		};
		m->n_ops = (uint32_t)(s->arch == ARCH_OPT
		                              ? model_ops_opt(m->ops, &sh)
		                              : model_ops_palm(m->ops, &sh));
	}
	m->weight_bytes = (weight_elems(m, s->tied) * m->weight_bits + 7) / 8;
	return 0;
}

/* Find NAME.ini: each dir of $AHASD_MODEL_PATH, then model_preset_dir(). */
static int find_preset(const char *name, char *out, size_t outlen, char *err,
                       size_t errlen)
{
	const char *env = getenv("AHASD_MODEL_PATH");
	const char *dflt = model_preset_dir();
	if (util_find_ini(env, dflt, name, out, outlen) == 0)
		return 0;
	char sug[64], hint[96] = "";
	if (util_suggest_file(name, env, dflt, ".ini", sug))
		snprintf(hint, sizeof hint, " (did you mean '%s'?)", sug);
	util_set_err(err, errlen,
	             "model preset '%s' not found%s (looked in "
	             "AHASD_MODEL_PATH=%s, %s)",
	             name, hint, env && *env ? env : "(unset)", dflt);
	return -ENOENT;
}

int model_preset_load(struct trace_model *m, const char *name_or_path,
                      char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct model_spec s = { .arch = -1, .tied = -1 };
	size_t n = strlen(name_or_path);
	int rc;

	memset(m, 0, sizeof *m);
	if (!n) {
		util_set_err(err, errlen, "empty model preset name");
		return -EINVAL;
	}
	if (strchr(name_or_path, '/') ||
	    (n > 4 && !strcmp(name_or_path + n - 4, ".ini"))) {
		if ((size_t)snprintf(path, sizeof path, "%s", name_or_path) >=
		    sizeof path) {
			util_set_err(err, errlen, "model preset path too long");
			return -ENAMETOOLONG;
		}
	} else {
		rc = find_preset(name_or_path, path, sizeof path, err, errlen);
		if (rc < 0)
			return rc;
	}
	rc = parse_file(&s, path, err, errlen);
	if (rc < 0)
		return rc;
	rc = check_spec(&s, path, err, errlen);
	if (rc < 0)
		return rc;
	rc = build_model(m, &s);
	if (rc < 0) {
		util_set_err(err, errlen,
		             "%s: cannot build the operator list: %s", path,
		             strerror(-rc));
		model_preset_clear(m);
		return rc;
	}
	rc = trace_model_check(m, s.name, err, errlen);
	if (rc < 0)
		model_preset_clear(m);
	return rc;
}

void model_preset_clear(struct trace_model *m)
{
	if (!m)
		return;
	free(m->ops);
	memset(m, 0, sizeof *m);
}
