/* trace_source.c - a trace decoded and checked once, replayed many times.
 *
 * The in-memory form of a sequence is one allocation: its float and 32-bit
 * arrays one after the other, pointed to by an ordinary struct trace_seq,
 * so the engine reads it exactly as it reads the reader's output.
 */
#include "trace_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct trace_source {
	struct trace_reader *rd;   /* header; and every pass when streamed */
	int in_memory;
	struct trace_seq *seq;     /* [n_seq] when in memory */
	size_t n_seq, cap;
	size_t next;               /* in memory: the pass's next sequence */
	struct trace_seq cur;      /* streamed: the reader's last sequence */
	uint64_t total_seq, total_tok;
	char sha[65];
};

static void free_seqs(struct trace_source *s)
{
	for (size_t i = 0; i < s->n_seq; i++)
		free(s->seq[i].entropy);  /* the start of its one block */
	free(s->seq);
	s->seq = NULL;
	s->n_seq = s->cap = 0;
}

/* Bytes one sequence takes in memory. */
static size_t seq_bytes(const struct trace_seq *q, uint32_t lookahead)
{
	const size_t words = (size_t)q->n * (3 + 1 + (q->tokens ? 1 : 0)) +
	                     q->n_cont + (size_t)q->n_cont * lookahead;
	return words * 4 + sizeof *q;
}

/* Deep copy into one block. @return 0 or -ENOMEM. */
static int seq_keep(struct trace_source *s, const struct trace_seq *q,
                    uint32_t lookahead)
{
	if (s->n_seq == s->cap) {
		const size_t nc = s->cap ? 2 * s->cap : 256;
		struct trace_seq *ns = realloc(s->seq, nc * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		s->seq = ns;
		s->cap = nc;
	}
	const size_t n = q->n, nc = q->n_cont, ne = nc * lookahead;
	const size_t bytes = seq_bytes(q, lookahead) - sizeof *q;
	float *f = malloc(bytes ? bytes : 1);
	if (!f)
		return -ENOMEM;
	struct trace_seq *d = &s->seq[s->n_seq];
	*d = *q;
	d->entropy = f;
	d->top1 = f + n;
	d->accept = f + 2 * n;
	d->cont_entropy = f + 3 * n;
	uint32_t *u = (uint32_t *)(f + 3 * n + ne);
	d->cont_pos = u;
	d->cont_index = (int32_t *)(u + nc);
	d->tokens = q->tokens ? u + nc + n : NULL;
	memcpy(d->entropy, q->entropy, n * sizeof(float));
	memcpy(d->top1, q->top1, n * sizeof(float));
	memcpy(d->accept, q->accept, n * sizeof(float));
	if (ne)
		memcpy(d->cont_entropy, q->cont_entropy, ne * sizeof(float));
	if (nc)
		memcpy(d->cont_pos, q->cont_pos, nc * sizeof(uint32_t));
	memcpy(d->cont_index, q->cont_index, n * sizeof(int32_t));
	if (q->tokens)
		memcpy(d->tokens, q->tokens, n * sizeof(uint32_t));
	s->n_seq++;
	return 0;
}

int trace_source_open(struct trace_source **out, const char *path,
                      size_t budget, char *err, size_t errlen)
{
	struct trace_source *s = calloc(1, sizeof *s);
	struct trace_seq q;
	size_t used = 0;
	int rc;

	*out = NULL;
	if (!s) {
		util_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = trace_reader_open(&s->rd, path, err, errlen);
	if (rc < 0)
		goto error;
	const uint32_t k = trace_reader_header(s->rd)->lookahead;
	s->in_memory = budget > 0;
	while ((rc = trace_reader_next(s->rd, &q, err, errlen)) == 1) {
		s->total_seq++;
		s->total_tok += q.n;
		if (!s->in_memory)
			continue;
		used += seq_bytes(&q, k);
		if (used > budget) {
			/* over the budget: stream every pass instead */
			free_seqs(s);
			s->in_memory = 0;
			continue;
		}
		if (seq_keep(s, &q, k) < 0) {
			util_set_err(err, errlen, "%s: out of memory holding the "
			             "trace's sequences", path);
			rc = -ENOMEM;
			goto error;
		}
	}
	if (rc < 0)
		goto error;
	rc = trace_reader_sha256(s->rd, s->sha);
	if (rc < 0) {
		util_set_err(err, errlen, "%s: no hash after reading it", path);
		goto error;
	}
	if (!s->in_memory) {
		rc = trace_reader_rewind(s->rd, err, errlen);
		if (rc < 0)
			goto error;
	}
	*out = s;
	return 0;
error:
	trace_source_close(&s);
	return rc;
}

const struct trace_header *trace_source_header(const struct trace_source *s)
{
	return trace_reader_header(s->rd);
}

int trace_source_in_memory(const struct trace_source *s)
{
	return s->in_memory;
}

void trace_source_totals(const struct trace_source *s, uint64_t *n_seq,
                         uint64_t *n_tokens)
{
	if (n_seq)
		*n_seq = s->total_seq;
	if (n_tokens)
		*n_tokens = s->total_tok;
}

void trace_source_sha256(const struct trace_source *s, char hex[65])
{
	memcpy(hex, s->sha, sizeof s->sha);
}

const struct trace_seq *trace_source_at(const struct trace_source *s,
                                        size_t i)
{
	return s->in_memory && i < s->n_seq ? &s->seq[i] : NULL;
}

int trace_source_next(struct trace_source *s, const struct trace_seq **seq,
                      char *err, size_t errlen)
{
	if (s->in_memory) {
		if (s->next == s->n_seq)
			return 0;
		*seq = &s->seq[s->next++];
		return 1;
	}
	const int rc = trace_reader_next(s->rd, &s->cur, err, errlen);
	if (rc == 1)
		*seq = &s->cur;
	return rc;
}

int trace_source_rewind(struct trace_source *s, char *err, size_t errlen)
{
	if (s->in_memory) {
		s->next = 0;
		return 0;
	}
	return trace_reader_rewind(s->rd, err, errlen);
}

void trace_source_close(struct trace_source **sp)
{
	if (!sp || !*sp)
		return;
	free_seqs(*sp);
	trace_reader_close(&(*sp)->rd);
	free(*sp);
	*sp = NULL;
}
