/* trace_mem.h - a trace's sequences held in memory: decoded and checked
 * once, then replayed under as many configurations as a study needs. */
#ifndef AHASD_TRACE_MEM_H
#define AHASD_TRACE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

struct trace_mem {
	struct trace_seq *seq; /* each with its arrays in one block */
	size_t n_seq, cap;
	uint32_t lookahead;      /* K of the continuation rows */
	uint64_t tokens;         /* sum of the sequences' n */
	uint64_t max_context;    /* largest prompt_len + n ... */
	uint32_t max_context_id; /* ... and the sequence that has it */
};

void trace_mem_init(struct trace_mem *t, uint32_t lookahead);
/** Append a deep copy of s (accept, entropy and top1 when present,
 * accept_run when present, continuations and cont_index; token ids are
 * not kept). @return 0 or -ENOMEM. */
int trace_mem_add(struct trace_mem *t, const struct trace_seq *s);
/** Append every sequence rd has left. @return 0 or negative (message in
 * err). */
int trace_mem_read(struct trace_mem *t, struct trace_reader *rd, char *err,
                   size_t errlen);
void trace_mem_free(struct trace_mem *t);

#endif
