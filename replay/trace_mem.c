/* trace_mem.c - see trace_mem.h. */
#include "trace_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void trace_mem_init(struct trace_mem *t, uint32_t lookahead)
{
	memset(t, 0, sizeof *t);
	t->lookahead = lookahead;
}

int trace_mem_add(struct trace_mem *t, const struct trace_seq *s)
{
	if (t->n_seq == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 64;
		struct trace_seq *ns = realloc(t->seq, nc * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		t->seq = ns;
		t->cap = nc;
	}
	/* every array is 4-byte elements: one block, accept first (the one
	 * array every sequence has; trace_mem_free frees it), then the
	 * entropies and the runs when the trace has them */
	const size_t n = s->n, nc = s->n_cont;
	const size_t ncont = nc * t->lookahead;
	const size_t ne = s->entropy && s->top1 ? n : 0;
	const size_t nr = s->accept_run ? n : 0;
	const size_t words = n + 2 * ne + nr + nc + ncont + n;
	uint32_t *block = malloc((words ? words : 1) * 4);
	if (!block)
		return -ENOMEM;
	struct trace_seq *d = &t->seq[t->n_seq];
	memset(d, 0, sizeof *d);
	d->id = s->id;
	d->prompt_len = s->prompt_len;
	d->n = s->n;
	d->n_cont = s->n_cont;
	d->accept = (float *)block;
	d->entropy = ne ? d->accept + n : NULL;
	d->top1 = ne ? d->accept + 2 * n : NULL;
	d->accept_run = nr ? (uint32_t *)(d->accept + n + 2 * ne) : NULL;
	d->cont_pos = (uint32_t *)(d->accept + n + 2 * ne + nr);
	d->cont_entropy = (float *)(d->cont_pos + nc);
	d->cont_index = (int32_t *)(d->cont_entropy + ncont);
	if (n) {
		memcpy(d->accept, s->accept, n * sizeof(float));
		memcpy(d->cont_index, s->cont_index, n * sizeof(int32_t));
	}
	if (ne) {
		memcpy(d->entropy, s->entropy, n * sizeof(float));
		memcpy(d->top1, s->top1, n * sizeof(float));
	}
	if (nr)
		memcpy(d->accept_run, s->accept_run, n * sizeof(uint32_t));
	if (nc)
		memcpy(d->cont_pos, s->cont_pos, nc * sizeof(uint32_t));
	if (ncont)
		memcpy(d->cont_entropy, s->cont_entropy, ncont * sizeof(float));
	t->n_seq++;
	t->tokens += s->n;
	if ((uint64_t)s->prompt_len + s->n > t->max_context) {
		t->max_context = (uint64_t)s->prompt_len + s->n;
		t->max_context_id = s->id;
	}
	return 0;
}

int trace_mem_read(struct trace_mem *t, struct trace_reader *rd, char *err,
                   size_t errlen)
{
	struct trace_seq s;
	int rc;
	while ((rc = trace_reader_next(rd, &s, err, errlen)) == 1)
		if (trace_mem_add(t, &s) < 0) {
			util_set_err(err, errlen,
			             "out of memory holding the "
			             "trace's sequence %u (%zu read)",
			             s.id, t->n_seq);
			return -ENOMEM;
		}
	return rc;
}

void trace_mem_free(struct trace_mem *t)
{
	for (size_t i = 0; i < t->n_seq; i++)
		free(t->seq[i].accept);
	free(t->seq);
	memset(t, 0, sizeof *t);
}
