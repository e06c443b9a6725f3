/* trace_source.h - a trace decoded and checked once, replayed many times.
 *
 * Opening a source reads the whole trace once through the streaming reader
 * (every record checked, the file hashed in the same pass) and keeps the
 * sequences in memory while they fit a byte budget. A sweep then replays
 * them under any number of configurations without decoding again. A trace
 * over the budget is streamed instead: each later pass re-reads the file
 * in constant memory (a pipe cannot be read twice: -ESPIPE).
 */
#ifndef AHASD_TRACE_SOURCE_H
#define AHASD_TRACE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

/* Default budget for the decoded sequences: 1 GiB (about 60M tokens of a
 * trace with look-ahead 16 and one continuation in four positions). */
#define TRACE_SOURCE_BUDGET ((size_t)1 << 30)

struct trace_source;

/** Read, check and hash the trace at path; keep its sequences in memory if
 * they take at most budget bytes (0: never). Positioned at the first
 * sequence. @return 0 or negative errno-style with a message in err. */
int trace_source_open(struct trace_source **out, const char *path,
                      size_t budget, char *err, size_t errlen);
const struct trace_header *trace_source_header(const struct trace_source *s);
/** 1 if the sequences are held in memory, 0 if each pass re-reads. */
int trace_source_in_memory(const struct trace_source *s);
/** Sequences and generated tokens in the trace (known after open). */
void trace_source_totals(const struct trace_source *s, uint64_t *n_seq,
                         uint64_t *n_tokens);
/** SHA-256 (hex) of the file's bytes, from the pass open made. */
void trace_source_sha256(const struct trace_source *s, char hex[65]);
/** Sequence i in memory, or NULL (streamed, or i out of range). Valid
 * until trace_source_close(). */
const struct trace_seq *trace_source_at(const struct trace_source *s,
                                        size_t i);
/** Next sequence of the current pass: in memory it stays valid until
 * close, streamed until the next call.
 * @return 1 for a sequence, 0 at the end of the pass, negative on error. */
int trace_source_next(struct trace_source *s, const struct trace_seq **seq,
                      char *err, size_t errlen);
/** Start a new pass at the first sequence. @return 0 or negative. */
int trace_source_rewind(struct trace_source *s, char *err, size_t errlen);
void trace_source_close(struct trace_source **s);

#endif
