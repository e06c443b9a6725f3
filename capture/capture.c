/* capture.c - the capture loop: target and draft both follow the target's
 * true token stream; per generated position record the draft's entropy,
 * top-1 probability and acceptance probability, and where a_p < 1 the
 * entropies of the draft's own free-running continuation. */
#include "capture.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ahasd_capture.h"
#include "config.h"
#include "json.h"
#include "sha256.h"
#include "trace.h"

void capture_opts_init(struct capture_opts *o)
{
	memset(o, 0, sizeof *o);
	o->top_p = 1.0;
	o->lookahead = CAPTURE_DEFAULT_LOOKAHEAD;
	o->max_new = CAPTURE_DEFAULT_MAX_NEW;
}

/* ---- paths ---- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static void stem(char *out, size_t n, const char *path)
{
	const char *b = base_name(path);
	const char *dot = strrchr(b, '.');
	size_t len = dot && dot != b ? (size_t)(dot - b) : strlen(b);

	if (len >= n)
		len = n - 1;
	memcpy(out, b, len);
	out[len] = '\0';
}

static int file_exists(const char *path)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return 0;
	fclose(f);
	return 1;
}

/* dir of path + "/" + name into out (truncated to n - 1 bytes) */
static void sibling(char *out, size_t n, const char *path, const char *name)
{
	const char *s = strrchr(path, '/');
	size_t dl = s ? (size_t)(s - path) + 1 : 0, nl = strlen(name);

	if (dl > n - 1)
		dl = n - 1;
	memcpy(out, path, dl);
	if (nl > n - 1 - dl)
		nl = n - 1 - dl;
	memcpy(out + dl, name, nl);
	out[dl + nl] = '\0';
}

/* the sha256 of path into out, copied from known when path names the file
 * known was hashed from (the same path) */
static int same_file_hash(const char *path, const char *known_path,
                          const char known[65], char out[65])
{
	if (strcmp(path, known_path) == 0) {
		memcpy(out, known, 65);
		return 0;
	}
	return sha256_file_hex(path, out);
}

/* ---- pair ---- */

int capture_pair_open(struct capture_pair *p, const struct capture_opts *o,
                      char *err, size_t errlen)
{
	int ret;
	const char *draft_path = o->draft ? o->draft : o->model;
	char suffix[96] = "";

	memset(p, 0, sizeof *p);
	if (!o->model) {
		snprintf(err, errlen, "no target model: give -m MODEL.bin");
		return -EINVAL;
	}
	if (!o->draft && !o->skip_layers && !o->quant_bits) {
		snprintf(err, errlen,
		         "no draft model: give --draft FILE, "
		         "--draft-skip-layers LIST or --draft-quant int8|int4");
		return -EINVAL;
	}
	ret = llm_load(&p->target, o->model, err, errlen);
	if (ret)
		goto error;
	if (o->tokenizer) {
		snprintf(p->tokenizer_path, sizeof p->tokenizer_path, "%s",
		         o->tokenizer);
	} else {
		sibling(p->tokenizer_path, sizeof p->tokenizer_path, o->model,
		        "tok512.bin");
		if (!file_exists(p->tokenizer_path))
			sibling(p->tokenizer_path, sizeof p->tokenizer_path,
			        o->model, "tokenizer.bin");
		if (!file_exists(p->tokenizer_path)) {
			ret = -ENOENT;
			snprintf(err, errlen,
			         "%s: no tok512.bin or tokenizer.bin beside "
			         "the model; give -z TOKENIZER",
			         o->model);
			goto error;
		}
	}
	ret = llm_tokenizer_load(&p->tok, p->tokenizer_path,
	                         p->target->cfg.vocab_size, err, errlen);
	if (ret)
		goto error;
	ret = llm_load(&p->draft, draft_path, err, errlen);
	if (ret)
		goto error;
	if (p->draft->cfg.vocab_size != p->target->cfg.vocab_size) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "draft %s has vocab_size %d but target %s has "
		         "%d: a speculative pair must share one vocabulary",
		         draft_path, p->draft->cfg.vocab_size, o->model,
		         p->target->cfg.vocab_size);
		goto error;
	}
	/* tokenizer of the draft: explicit, or the same-named file beside it */
	if (o->draft_tokenizer) {
		snprintf(p->draft_tokenizer_path,
		         sizeof p->draft_tokenizer_path, "%s",
		         o->draft_tokenizer);
	} else {
		sibling(p->draft_tokenizer_path, sizeof p->draft_tokenizer_path,
		        draft_path, base_name(p->tokenizer_path));
		if (!file_exists(p->draft_tokenizer_path))
			snprintf(p->draft_tokenizer_path,
			         sizeof p->draft_tokenizer_path, "%s",
			         p->tokenizer_path);
	}
	/* a draft derived from the target reads the same files: hashed once */
	if ((ret = sha256_file_hex(o->model, p->target_sha)) != 0 ||
	    (ret = same_file_hash(draft_path, o->model, p->target_sha,
	                          p->draft_sha)) != 0 ||
	    (ret = sha256_file_hex(p->tokenizer_path, p->tok_sha)) != 0 ||
	    (ret = same_file_hash(p->draft_tokenizer_path, p->tokenizer_path,
	                          p->tok_sha, p->draft_tok_sha)) != 0) {
		snprintf(err, errlen, "cannot hash the model files: %s",
		         strerror(-ret));
		goto error;
	}
	if (strcmp(p->tok_sha, p->draft_tok_sha) != 0) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "draft tokenizer %s (sha256 %.12s...) differs "
		         "from the target tokenizer %s (sha256 %.12s...): a "
		         "speculative "
		         "pair must share one tokenizer",
		         p->draft_tokenizer_path, p->draft_tok_sha,
		         p->tokenizer_path, p->tok_sha);
		goto error;
	}
	if (o->skip_layers) {
		ret = llm_skip_layers(p->draft, o->skip_layers, err, errlen);
		if (ret)
			goto error;
		snprintf(suffix, sizeof suffix, "-skip%s", o->skip_layers);
		for (char *c = suffix; *c; c++)
			if (*c == ',')
				*c = '_';
	}
	if (o->quant_bits) {
		size_t l = strlen(suffix);
		ret = llm_quantize(p->draft, o->quant_bits, err, errlen);
		if (ret)
			goto error;
		snprintf(suffix + l, sizeof suffix - l, "-int%d",
		         o->quant_bits);
	}
	stem(p->target_name, sizeof p->target_name, o->model);
	{
		char dstem[TRACE_NAME_MAX];
		stem(dstem, sizeof dstem, draft_path);
		snprintf(p->draft_name, sizeof p->draft_name, "%.30s%.32s",
		         dstem, suffix);
	}
	/* a skip-layer draft shares the layers before its first skipped one */
	(void)llm_share_prefix(p->target, p->draft);
	p->seq_len = p->target->cfg.seq_len < p->draft->cfg.seq_len
	                     ? p->target->cfg.seq_len
	                     : p->draft->cfg.seq_len;
	return 0;
error:
	capture_pair_close(p);
	return ret;
}

void capture_pair_close(struct capture_pair *p)
{
	llm_free(&p->target);
	llm_free(&p->draft);
	llm_tokenizer_free(&p->tok);
}

/* ---- prompts ---- */

void capture_free_prompts(char ***prompts, size_t n)
{
	if (!prompts || !*prompts)
		return;
	for (size_t i = 0; i < n; i++)
		free((*prompts)[i]);
	free(*prompts);
	*prompts = NULL;
}

int capture_read_prompts(const char *path, char ***out, size_t *nout, char *err,
                         size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, **v = NULL;
	size_t cap = 0, n = 0, vcap = 0, lineno = 0;
	ssize_t got;
	int ret = 0;

	*out = NULL;
	*nout = 0;
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open prompt file: %s", path,
		         strerror(errno));
		return ret;
	}
	while ((got = getline(&line, &cap, f)) >= 0) {
		char *text;
		size_t len = (size_t)got;

		lineno++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (line[0] == '{') {
			struct json_value *j = NULL;
			const struct json_value *pv;
			char jerr[256];

			ret = json_parse(line, len, &j, jerr, sizeof jerr);
			if (ret) {
				snprintf(err, errlen,
				         "%s:%zu: bad JSON line: %s", path,
				         lineno, jerr);
				goto error;
			}
			pv = json_get(j, "prompt");
			if (!pv || pv->type != JSON_STRING ||
			    strlen(pv->str) != pv->len) {
				json_free(&j);
				ret = -EINVAL;
				snprintf(err, errlen,
				         "%s:%zu: field 'prompt': expected a "
				         "string without NUL bytes",
				         path, lineno);
				goto error;
			}
			text = strdup(pv->str);
			json_free(&j);
		} else {
			text = strdup(line);
		}
		if (!text) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto error;
		}
		if (n == vcap) {
			size_t nc = vcap ? vcap * 2 : 16;
			char **nv = realloc(v, nc * sizeof *nv);
			if (!nv) {
				free(text);
				ret = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto error;
			}
			v = nv;
			vcap = nc;
		}
		v[n++] = text;
	}
	if (n == 0) {
		ret = -EINVAL;
		snprintf(err, errlen,
		         "%s: prompt file holds no prompts (one per "
		         "line, or JSON lines {\"prompt\": \"...\"})",
		         path);
		goto error;
	}
	*out = v;
	*nout = n;
	v = NULL;
error:
	capture_free_prompts(&v, n);
	free(line);
	fclose(f);
	return ret;
}

/* ---- distributions ---- */

void capture_dist(float *probs, const float *logits, int n, double temperature,
                  double top_p, int *idx)
{
	if (temperature <= 0.0) {
		llm_softmax(probs, logits, n, 1.0);
		return;
	}
	llm_softmax(probs, logits, n, temperature);
	llm_top_p(probs, n, top_p, idx);
}

double capture_overlap(const float *p, const float *q, int n)
{
	double s = 0.0;

	for (int i = 0; i < n; i++)
		s += p[i] < q[i] ? p[i] : q[i];
	return s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
}

/* ---- provenance helpers ---- */

static int prov(struct ahasd_capture *c, const char *k, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int prov(struct ahasd_capture *c, const char *k, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return ahasd_capture_provenance(c, k, buf);
}

static int capture_date(const struct capture_opts *o, char *out, size_t n,
                        char *err, size_t errlen)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t;
	struct tm tm;

	if (o->date) {
		snprintf(out, n, "%s", o->date);
		return 0;
	}
	if (sde && *sde) {
		char *end;
		long long v = strtoll(sde, &end, 10);
		if (*end || v < 0) {
			snprintf(err, errlen,
			         "SOURCE_DATE_EPOCH=\"%s\": expected seconds "
			         "since the epoch",
			         sde);
			return -EINVAL;
		}
		t = (time_t)v;
	} else {
		t = time(NULL);
	}
	if (!gmtime_r(&t, &tm)) {
		snprintf(err, errlen, "cannot format the date");
		return -EINVAL;
	}
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the loop ---- */

/* RNG streams of one position */
enum { RNG_TARGET = 0, RNG_DRAFT = 1, RNG_CONT = 2 };

/* Continuations, stepped together (llm_forward_batch): up to this many
 * at once, each in a slot of the batch, a slot refilled as its
 * continuation ends. */
#define CAPTURE_BATCH 16
/* Sequences whose first passes step together, each on its own clone of
 * the target and of the draft (one pass over each matrix for all). */
#define CAPTURE_GROUP 4

/* A rejection (a_p < 1) at position i (absolute a) of a sequence: the
 * draft drafted d there where the target emitted y. */
struct cont_job {
	uint32_t i;
	int a, d, y;
	int reuse; /* d == y and the draft's main step at i + 1 ran: that
	               * step fed y at a after the true prefix, exactly the
	               * continuation's first forward (sampled captures) */
};

/* One sequence of a group: its first pass, then its continuations. */
struct seq_state {
	size_t s;           /* the prompt's index */
	int P;              /* prompt length */
	uint32_t N, n;      /* the generation cap, positions generated */
	int pos, tok, live; /* the next step feeds tok at pos */
	struct llm_model *target, *draft; /* its own KV caches */
	/* per generated position i < N */
	float *h, *t1, *ap;
	uint32_t *y;
	float *next_ld;        /* N x V: the draft's logits at i + 1, kept
	                          * for a job at i that reuses them */
	struct cont_job *jobs; /* the rejections, in order */
	uint32_t n_jobs;
	float *rows; /* n_jobs x K continuation entropies */
	char *text;  /* --print-text, until the sequence is out */
	size_t text_len, text_cap;
};

/* Distributions and scratch of the capture loop (V entries each), the
 * sequences of a group, and the batches: the targets' steps; the drafts'
 * steps and the continuations. */
struct capture_work {
	float *pt, *pd;
	int *idx;
	struct seq_state seq[CAPTURE_GROUP];
	int n_seq;
	struct llm_batch tb, db;
};

static int text_add(struct seq_state *q, const char *piece)
{
	size_t len = strlen(piece);

	if (q->text_len + len + 1 > q->text_cap) {
		size_t cap = (q->text_len + len + 1) * 2;
		char *t = realloc(q->text, cap);

		if (!t)
			return -ENOMEM;
		q->text = t;
		q->text_cap = cap;
	}
	memcpy(q->text + q->text_len, piece, len + 1);
	q->text_len += len;
	return 0;
}

/* One continuation's state in a slot of the batch */
struct cont_slot {
	int seq, job; /* its sequence and job, job -1 when free */
	uint32_t j;   /* its next step (0 .. K - 1) */
	int c;        /* the token it feeds at a + j */
	int prefix;   /* positions below it come from the draft's cache */
};

/* Record step j of a continuation from its logits: the entropy of its
 * distribution, and (before the last step) the token it drafts next.
 * @return 1 when that was the last step */
static int cont_record(const struct capture_opts *o, struct capture_work *wk,
                       int V, struct cont_slot *sl, const float *lc)
{
	struct seq_state *q = &wk->seq[sl->seq];
	const struct cont_job *jb = &q->jobs[sl->job];
	const int sampled = o->temperature > 0.0;

	capture_dist(wk->pd, lc, V, o->temperature, o->top_p, wk->idx);
	q->rows[(size_t)sl->job * o->lookahead + sl->j] = (float)llm_entropy(
	        wk->pd, V);
	if (sl->j + 1 == o->lookahead)
		return 1; /* the last step's token is never fed */
	sl->c = sampled ? llm_sample(wk->pd, V,
	                             llm_rng_uniform(o->seed, q->s, jb->i,
	                                             RNG_CONT + sl->j))
	                : llm_argmax(wk->pd, V);
	sl->j++;
	return 0;
}

/* Put the next job (of the group's sequences, in order) that needs a
 * forward into a free slot (a job whose every step reuses the main pass's
 * logits ends here). @return 0 when none is left */
static int cont_start(const struct capture_opts *o, struct capture_work *wk,
                      int V, struct cont_slot *sl, int *next_seq,
                      uint32_t *next_job)
{
	while (*next_seq < wk->n_seq) {
		struct seq_state *q = &wk->seq[*next_seq];
		const struct cont_job *jb;

		if (*next_job >= q->n_jobs) {
			++*next_seq;
			*next_job = 0;
			continue;
		}
		jb = &q->jobs[*next_job];
		sl->seq = *next_seq;
		sl->job = (int)(*next_job)++;
		sl->j = 0;
		sl->c = jb->d;
		sl->prefix = jb->a;
		if (!jb->reuse)
			return 1;
		/* its first step is the main pass's step at i + 1, whose KV row
		 * a the draft's cache holds */
		sl->prefix = jb->a + 1;
		if (!cont_record(o, wk, V, sl,
		                 q->next_ld + (size_t)jb->i * (size_t)V))
			return 1;
	}
	sl->job = -1;
	return 0;
}

/* The draft's free-running continuations after each rejection of the
 * group's sequences (their jobs, found by their first passes): from its
 * own token d at position a it drafts K steps, recording the entropy of
 * each step's distribution in the job's row. They read the true prefix
 * from the sequence's draft cache, which the first pass filled, and keep
 * their own rows after it, so any number run side by side. */
static void continuations(struct capture_pair *pair,
                          const struct capture_opts *o, struct capture_work *wk,
                          struct capture_stats *st)
{
	const int V = pair->target->cfg.vocab_size;
	struct cont_slot sl[CAPTURE_BATCH];
	int next_seq = 0, live = 0;
	uint32_t next_job = 0;

	for (int k = 0; k < CAPTURE_BATCH; k++)
		live += cont_start(o, wk, V, &sl[k], &next_seq, &next_job);
	while (live > 0) {
		struct llm_step step[CAPTURE_BATCH];
		int slot[CAPTURE_BATCH], n = 0;

		for (int k = 0; k < CAPTURE_BATCH; k++) {
			const struct seq_state *q = &wk->seq[sl[k].seq];

			if (sl[k].job < 0)
				continue;
			step[n] = (struct llm_step){
				.slot = k,
				.token = sl[k].c,
				.pos = q->jobs[sl[k].job].a + (int)sl[k].j,
				.prefix = sl[k].prefix,
				.kv = q->draft,
			};
			slot[n++] = k;
		}
		llm_forward_batch(pair->draft, &wk->db, step, n);
		st->forwards += (uint64_t)n;
		for (int e = 0; e < n; e++) {
			struct cont_slot *c = &sl[slot[e]];

			if (cont_record(o, wk, V, c,
			                wk->db.logits + (size_t)e * (size_t)V))
				live -= 1 - cont_start(o, wk, V, c, &next_seq,
				                       &next_job);
		}
	}
}

/* What the first pass records at generated position i of q: the target's
 * token, the draft's entropy, top-1 and acceptance, and the rejection.
 * @return the target's token */
static int first_pass_pos(const struct capture_opts *o, struct capture_work *wk,
                          struct seq_state *q, int V, uint32_t i,
                          const float *lt, const float *ld,
                          struct capture_stats *st)
{
	const int sampled = o->temperature > 0.0;
	int y, d, top;
	double acc;

	/* greedy: only the target's argmax is wanted, below */
	if (sampled)
		capture_dist(wk->pt, lt, V, o->temperature, o->top_p, wk->idx);
	if (q->n_jobs > 0 && q->jobs[q->n_jobs - 1].i + 1 == i &&
	    q->jobs[q->n_jobs - 1].reuse)
		memcpy(q->next_ld + (size_t)(i - 1) * (size_t)V, ld,
		       (size_t)V * sizeof *ld);
	capture_dist(wk->pd, ld, V, o->temperature, o->top_p, wk->idx);
	top = llm_argmax(wk->pd, V);
	if (sampled) {
		y = llm_sample(wk->pt, V,
		               llm_rng_uniform(o->seed, q->s, i, RNG_TARGET));
		d = llm_sample(wk->pd, V,
		               llm_rng_uniform(o->seed, q->s, i, RNG_DRAFT));
		acc = capture_overlap(wk->pt, wk->pd, V);
	} else {
		y = llm_greedy_token(lt, V, wk->pt);
		d = top;
		acc = y == d ? 1.0 : 0.0;
	}
	q->h[i] = (float)llm_entropy(wk->pd, V);
	q->t1[i] = wk->pd[top];
	q->ap[i] = (float)acc;
	q->y[i] = (uint32_t)y;
	st->sum_accept += q->ap[i];
	if (q->ap[i] >= 1.0f)
		st->accepted_positions++;
	else
		q->jobs[q->n_jobs++] = (struct cont_job){ i, q->P + (int)i, d,
			                                  y, d == y };
	return y;
}

/* The public description of a model as recorded: m->ops gets a new array
 * in *ops whose names point into tm. */
static int model_out(struct ahasd_capture_model *m,
                     struct ahasd_capture_op **ops,
                     const struct trace_model *tm)
{
	const struct ahasd_capture_model init = AHASD_CAPTURE_MODEL_INIT;

	*m = init;
	*ops = calloc(tm->n_ops, sizeof **ops);
	if (!*ops)
		return -ENOMEM;
	for (uint32_t i = 0; i < tm->n_ops; i++) {
		const struct trace_op *t = &tm->ops[i];

		(*ops)[i] = (struct ahasd_capture_op){
			.name = t->name,
			.kind = trace_op_kind_name(t->kind),
			.k = t->k,
			.n = t->n,
			.heads = t->heads,
			.kv_heads = t->kv_heads,
			.head_dim = t->head_dim,
			.repeat = t->repeat,
		};
	}
	m->name = tm->name;
	m->dim = tm->dim;
	m->hidden_dim = tm->hidden_dim;
	m->n_layers = tm->n_layers;
	m->n_heads = tm->n_heads;
	m->n_kv_heads = tm->n_kv_heads;
	m->vocab_size = tm->vocab_size;
	m->seq_len = tm->seq_len;
	m->weight_bits = tm->weight_bits;
	m->weight_bytes = tm->weight_bytes;
	m->n_ops = tm->n_ops;
	m->ops = *ops;
	return 0;
}

/* Start the trace through the public capture API (ahasd_capture.h), as any
 * runtime would: both models as executed, then the provenance. */
static int open_capture(struct ahasd_capture **cap, struct capture_pair *pair,
                        const struct capture_opts *o, size_t n_prompts,
                        size_t n_capped, const char *date, char *err,
                        size_t errlen)
{
	struct ahasd_capture_config cfg = AHASD_CAPTURE_CONFIG_INIT;
	struct ahasd_capture_model mt, md;
	struct ahasd_capture_op *ot = NULL, *od = NULL;
	struct trace_model tt, td;
	const int sampled = o->temperature > 0.0;
	const double temperature = sampled ? o->temperature : 0.0;
	const double top_p = sampled ? o->top_p : 1.0;
	char psha[65];
	int ret;

	memset(&tt, 0, sizeof tt);
	memset(&td, 0, sizeof td);
	ret = llm_describe(pair->target, pair->target_name, &tt, err, errlen);
	if (ret)
		goto error;
	ret = llm_describe(pair->draft, pair->draft_name, &td, err, errlen);
	if (ret)
		goto error;
	ret = sha256_file_hex(o->prompts, psha);
	if (ret) {
		snprintf(err, errlen, "%s: cannot hash: %s", o->prompts,
		         strerror(-ret));
		goto error;
	}
	if ((ret = model_out(&mt, &ot, &tt)) ||
	    (ret = model_out(&md, &od, &td))) {
		snprintf(err, errlen, "out of memory");
		goto error;
	}
	cfg.lookahead = o->lookahead;
	cfg.sampled = sampled;
	cfg.temperature = temperature;
	cfg.top_p = top_p;
	cfg.seed = o->seed;
	cfg.draft = &md;
	cfg.target = &mt;
	ret = ahasd_capture_open(cap, o->out, &cfg, err, errlen);
	if (ret)
		goto error;
	ret = prov(*cap, "tool", "ahasd-capture") ||
	      prov(*cap, "tool_version", "%s", AHASD_VERSION) ||
	      prov(*cap, "runtime", "%s", CAPTURE_RUNTIME) ||
	      prov(*cap, "date", "%s", date) ||
	      prov(*cap, "target_model", "%s", base_name(o->model)) ||
	      prov(*cap, "target_model_sha256", "%s", pair->target_sha) ||
	      prov(*cap, "tokenizer", "%s", base_name(pair->tokenizer_path)) ||
	      prov(*cap, "tokenizer_sha256", "%s", pair->tok_sha) ||
	      prov(*cap, "draft_model", "%s",
	           base_name(o->draft ? o->draft : o->model)) ||
	      prov(*cap, "draft_model_sha256", "%s", pair->draft_sha) ||
	      prov(*cap, "draft_kind", "%s",
	           o->draft ? "separate checkpoint"
	                    : "self-speculative (derived from the target)") ||
	      prov(*cap, "draft_skip_layers", "%s",
	           o->skip_layers ? o->skip_layers : "none") ||
	      prov(*cap, "draft_skip_layers_base", "1-based layer numbers") ||
	      prov(*cap, "draft_quant", "%s",
	           o->quant_bits == 8   ? "int8"
	           : o->quant_bits == 4 ? "int4"
	                                : "none") ||
	      prov(*cap, "draft_quant_scheme", "%s",
	           o->quant_bits ? "symmetric per group of 32 along rows, fp32 "
	                           "scale, dequantized "
	                           "to fp32; embedding, q/k/v/o, ffn and "
	                           "classifier; norms fp32"
	                         : "none") ||
	      prov(*cap, "sampling", "%s", sampled ? "sampled" : "greedy") ||
	      prov(*cap, "temperature", "%g", temperature) ||
	      prov(*cap, "top_p", "%g", top_p) ||
	      prov(*cap, "seed", "%" PRIu64, o->seed) ||
	      prov(*cap, "entropy", "%s",
	           sampled ? "nats, draft distribution after temperature and "
	                     "top-p, given "
	                     "the true prefix"
	                   : "nats, draft softmax (T=1) given the true "
	                     "prefix") ||
	      prov(*cap, "prompt_source", "%s", o->prompts) ||
	      prov(*cap, "prompt_source_sha256", "%s", psha) ||
	      prov(*cap, "prompts", "%zu", n_prompts) ||
	      prov(*cap, "prompt_len", "tokens including BOS") ||
	      prov(*cap, "max_new_tokens", "%" PRIu32, o->max_new) ||
	      prov(*cap, "generation_cap",
	           "min(max_new_tokens, seq_len - prompt_len "
	           "- lookahead + 1) with seq_len %d",
	           pair->seq_len) ||
	      prov(*cap, "capped_sequences", "%zu", n_capped) ||
	      prov(*cap, "stop", "%s",
	           o->no_stop ? "none (max_new_tokens)"
	                      : "after the target emits BOS (1) or EOS (2)");
	if (ret) {
		/* keys non-empty, values non-NULL, far fewer than the limit:
		 * only memory can run out */
		snprintf(err, errlen, "%s", ahasd_capture_error(*cap));
		ret = -ENOMEM;
		ahasd_capture_abort(cap);
	}
error:
	free(ot);
	free(od);
	free(tt.ops);
	free(td.ops);
	return ret;
}

int capture_run(const struct capture_opts *o, struct capture_stats *st,
                char *err, size_t errlen)
{
	int ret = 0;
	struct capture_pair pair;
	struct ahasd_capture *trace = NULL;
	char **prompts = NULL;
	size_t n_prompts = 0, n_read = 0, n_capped = 0;
	int **ptoks = NULL;
	int *plen = NULL;
	struct capture_work wk = { 0 };
	uint32_t max_n = 0; /* the most positions a sequence generates */
	char date[64];
	int V, pair_open = 0;
	const int sampled = o->temperature > 0.0;
	const uint32_t K = o->lookahead;
	double t0 = now_s();

	memset(st, 0, sizeof *st);
	if (K < 1 || K > 4096) {
		snprintf(err, errlen,
		         "--lookahead %" PRIu32 ": expected 1..4096", K);
		return -EINVAL;
	}
	if (o->max_new < 1) {
		snprintf(err, errlen, "--max-new-tokens: expected >= 1");
		return -EINVAL;
	}
	if (sampled && (o->top_p <= 0.0 || o->top_p > 1.0)) {
		snprintf(err, errlen, "--top-p %g: expected a value in (0, 1]",
		         o->top_p);
		return -EINVAL;
	}
	if (!o->prompts || !o->out) {
		snprintf(err, errlen,
		         "need a prompt file (-p) and an output (-o)");
		return -EINVAL;
	}
	ret = capture_date(o, date, sizeof date, err, errlen);
	if (ret)
		return ret;
	ret = capture_pair_open(&pair, o, err, errlen);
	if (ret)
		return ret;
	pair_open = 1;
	V = pair.target->cfg.vocab_size;
	ret = capture_read_prompts(o->prompts, &prompts, &n_read, err, errlen);
	if (ret)
		goto error;
	n_prompts = n_read;
	if (o->max_prompts && n_prompts > o->max_prompts)
		n_prompts = o->max_prompts;
	/* encode every prompt first: length errors before any output */
	ptoks = calloc(n_prompts, sizeof *ptoks);
	plen = calloc(n_prompts, sizeof *plen);
	if (!ptoks || !plen) {
		ret = -ENOMEM;
		goto nomem;
	}
	for (size_t s = 0; s < n_prompts; s++) {
		size_t cap = strlen(prompts[s]) + 3;
		int n;
		ptoks[s] = malloc(cap * sizeof(int));
		if (!ptoks[s]) {
			ret = -ENOMEM;
			goto nomem;
		}
		n = llm_encode(pair.tok, prompts[s], ptoks[s], cap);
		if (n < 0) {
			ret = n;
			goto nomem;
		}
		plen[s] = n;
		if (n > pair.seq_len) {
			ret = -EINVAL;
			snprintf(err, errlen,
			         "%s: prompt %zu is %d tokens, longer than "
			         "the model's context (seq_len %d)",
			         o->prompts, s + 1, n, pair.seq_len);
			goto error;
		}
		if ((int64_t)n + (int64_t)K > pair.seq_len) {
			ret = -EINVAL;
			snprintf(err, errlen,
			         "%s: prompt %zu is %d tokens: with lookahead "
			         "%" PRIu32
			         " it leaves no room to generate within the "
			         "model's context (seq_len %d)",
			         o->prompts, s + 1, n, K, pair.seq_len);
			goto error;
		}
		if ((int64_t)pair.seq_len - n - K + 1 < (int64_t)o->max_new)
			n_capped++;
		{
			int64_t cap64 = (int64_t)pair.seq_len - n - K + 1;
			uint32_t N = cap64 < (int64_t)o->max_new
			                     ? (uint32_t)cap64
			                     : o->max_new;
			if (N > max_n)
				max_n = N;
		}
	}
	wk.pt = malloc((size_t)V * sizeof *wk.pt);
	wk.pd = malloc((size_t)V * sizeof *wk.pd);
	wk.idx = malloc((size_t)V * sizeof *wk.idx);
	if (!wk.pt || !wk.pd || !wk.idx ||
	    llm_batch_init(&wk.tb, pair.target, CAPTURE_GROUP, 1) != 0 ||
	    llm_batch_init(&wk.db, pair.draft,
	                   CAPTURE_BATCH > CAPTURE_GROUP ? CAPTURE_BATCH
	                                                 : CAPTURE_GROUP,
	                   (int)K) != 0) {
		ret = -ENOMEM;
		goto nomem;
	}
	for (int m = 0; m < CAPTURE_GROUP; m++) {
		struct seq_state *q = &wk.seq[m];

		q->h = malloc((size_t)max_n * sizeof *q->h);
		q->t1 = malloc((size_t)max_n * sizeof *q->t1);
		q->ap = malloc((size_t)max_n * sizeof *q->ap);
		q->y = malloc((size_t)max_n * sizeof *q->y);
		q->next_ld = malloc((size_t)max_n * (size_t)V *
		                    sizeof *q->next_ld);
		q->jobs = malloc((size_t)max_n * sizeof *q->jobs);
		q->rows = malloc((size_t)max_n * (size_t)K * sizeof *q->rows);
		if (!q->h || !q->t1 || !q->ap || !q->y || !q->next_ld ||
		    !q->jobs || !q->rows) {
			ret = -ENOMEM;
			goto nomem;
		}
		if (m == 0) {
			q->target = pair.target;
			q->draft = pair.draft;
		} else if (llm_clone(&q->target, pair.target) != 0 ||
		           llm_clone(&q->draft, pair.draft) != 0) {
			ret = -ENOMEM;
			goto nomem;
		}
	}
	ret = open_capture(&trace, &pair, o, n_prompts, n_capped, date, err,
	                   errlen);
	if (ret)
		goto error;

	for (size_t s0 = 0; s0 < n_prompts; s0 += CAPTURE_GROUP) {
		wk.n_seq = n_prompts - s0 < CAPTURE_GROUP
		                   ? (int)(n_prompts - s0)
		                   : CAPTURE_GROUP;
		for (int m = 0; m < wk.n_seq; m++) {
			struct seq_state *q = &wk.seq[m];
			const size_t s = s0 + (size_t)m;
			const int64_t cap64 = (int64_t)pair.seq_len - plen[s] -
			                      K + 1;

			q->s = s;
			q->P = plen[s];
			q->N = cap64 < (int64_t)o->max_new ? (uint32_t)cap64
			                                   : o->max_new;
			q->n = 0;
			q->pos = 0;
			q->tok = ptoks[s][0];
			q->live = 1;
			q->n_jobs = 0;
			q->text_len = 0;
			if (o->text) {
				char head[32];

				snprintf(head, sizeof head, "[%zu] ", s);
				if (text_add(q, head) ||
				    text_add(q, prompts[s])) {
					ret = -ENOMEM;
					goto nomem;
				}
			}
		}
		/* first passes, side by side: target and draft on each true
		 * prefix, position by position (the prompt's, then the generated
		 * ones, which are recorded); the rejections are kept for the
		 * continuations */
		for (;;) {
			struct llm_step ts[CAPTURE_GROUP], ds[CAPTURE_GROUP];
			int who[CAPTURE_GROUP], ne = 0;

			for (int m = 0; m < wk.n_seq; m++) {
				struct seq_state *q = &wk.seq[m];

				if (!q->live)
					continue;
				ts[ne] = (struct llm_step){ .slot = -1,
					                    .token = q->tok,
					                    .pos = q->pos,
					                    .kv = q->target };
				ds[ne] = ts[ne];
				ds[ne].kv = q->draft;
				ds[ne].after = q->target;
				who[ne++] = m;
			}
			if (ne == 0)
				break;
			llm_forward_batch(pair.target, &wk.tb, ts, ne);
			llm_forward_batch(pair.draft, &wk.db, ds, ne);
			st->forwards += 2 * (uint64_t)ne;
			for (int e = 0; e < ne; e++) {
				struct seq_state *q = &wk.seq[who[e]];
				uint32_t i;
				int y;

				if (q->pos + 1 < q->P) { /* the prompt */
					q->pos++;
					q->tok = ptoks[q->s][q->pos];
					continue;
				}
				i = (uint32_t)(q->pos + 1 - q->P);
				y = first_pass_pos(
				        o, &wk, q, V, i,
				        wk.tb.logits + (size_t)e * (size_t)V,
				        wk.db.logits + (size_t)e * (size_t)V,
				        st);
				if (o->text &&
				    text_add(q,
				             llm_decode(pair.tok, q->tok, y))) {
					ret = -ENOMEM;
					goto nomem;
				}
				q->pos++;
				q->tok = y;
				q->n = i + 1;
				if (q->n == q->N ||
				    (!o->no_stop && (y == 1 || y == 2))) {
					q->live = 0;
					/* the main step at n does not run: nothing to reuse
					 * after it */
					if (q->n_jobs > 0 &&
					    q->jobs[q->n_jobs - 1].i + 1 ==
					            q->n)
						q->jobs[q->n_jobs - 1].reuse =
						        0;
				}
			}
		}
		continuations(&pair, o, &wk, st);
		for (int m = 0; m < wk.n_seq; m++) {
			struct seq_state *q = &wk.seq[m];

			if (o->text)
				fprintf(o->text, "%s\n", q->text);
			ret = ahasd_capture_begin(trace, (uint32_t)q->s,
			                          (uint32_t)q->P);
			for (uint32_t i = 0, jx = 0; ret == 0 && i < q->n;
			     i++) {
				const float *row = NULL;

				if (q->ap[i] < 1.0f)
					row = q->rows + (size_t)jx++ * K;
				ret = ahasd_capture_pos(trace, q->h[i],
				                        q->t1[i], q->ap[i],
				                        q->y[i], row);
			}
			if (ret == 0)
				ret = ahasd_capture_end(trace);
			if (ret)
				goto api_error;
			st->sequences++;
			st->tokens += q->n;
		}
		if (o->progress) {
			const size_t done = s0 + (size_t)wk.n_seq;
			double el = now_s() - t0;
			double rate = el > 0 ? (double)st->tokens / el : 0.0;
			double eta = (double)(n_prompts - done) * el /
			             (double)done;
			fprintf(stderr,
			        "\rcapture: %zu/%zu prompts, %" PRIu64
			        " tokens, "
			        "%.0f tok/s, ETA %.0f s   ",
			        done, n_prompts, st->tokens, rate, eta);
		}
	}
	if (o->progress)
		fputc('\n', stderr);
	ret = ahasd_capture_close(&trace, err, errlen);
	if (ret)
		goto error;
	st->seconds = now_s() - t0;
	goto error;
api_error:
	snprintf(err, errlen, "%s", ahasd_capture_error(trace));
	goto error;
nomem:
	snprintf(err, errlen, "out of memory");
error:
	ahasd_capture_abort(&trace);
	free(wk.pt);
	free(wk.pd);
	free(wk.idx);
	for (int m = 0; m < CAPTURE_GROUP; m++) {
		struct seq_state *q = &wk.seq[m];

		free(q->h);
		free(q->t1);
		free(q->ap);
		free(q->y);
		free(q->next_ld);
		free(q->jobs);
		free(q->rows);
		free(q->text);
		if (m > 0) {
			llm_free(&q->target);
			llm_free(&q->draft);
		}
	}
	llm_batch_free(&wk.tb);
	llm_batch_free(&wk.db);
	if (ptoks)
		for (size_t s = 0; s < n_prompts; s++)
			free(ptoks[s]);
	free(ptoks);
	free(plen);
	capture_free_prompts(&prompts, n_read);
	if (pair_open)
		capture_pair_close(&pair);
	return ret;
}
