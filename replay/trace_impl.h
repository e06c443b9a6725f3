/* trace_impl.h - what the trace format's files share (not installed):
 * small helpers, the msgpack field access of the reader (tf_*) and the
 * framing scan. Only trace_*.c include it. */
#ifndef AHASD_TRACE_IMPL_H
#define AHASD_TRACE_IMPL_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "trace.h"
#include "util.h"

#define TRACE_CHUNK ((size_t)64 * 1024)

#if defined(__GNUC__)
#define TRACE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TRACE_PRINTF(a, b)
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define TRACE_BIG_ENDIAN 1
#else
#define TRACE_BIG_ENDIAN 0
#endif

/* ---- small helpers ---- */

/* Prepend "prefix" to the message already in err. */
static inline void prefix_err(char *err, size_t errlen, const char *prefix)
{
	size_t plen, mlen;

	if (!err || errlen == 0)
		return;
	plen = strlen(prefix);
	mlen = strnlen(err, errlen - 1);
	if (plen >= errlen - 1) {
		snprintf(err, errlen, "%s", prefix);
		return;
	}
	if (plen + mlen > errlen - 1)
		mlen = errlen - 1 - plen;
	memmove(err + plen, err, mlen);
	memcpy(err, prefix, plen);
	err[plen + mlen] = '\0';
}

static inline void swap32_array(void *p, size_t count)
{
	uint32_t *u = p;

	for (size_t i = 0; i < count; i++) {
		uint32_t v = u[i];
		u[i] = (v >> 24) | ((v >> 8) & 0xff00u) |
		       ((v << 8) & 0xff0000u) | (v << 24);
	}
}

static inline int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static inline char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/* Printable copy of untrusted bytes: ASCII as-is, others as \xNN; at most
 * 40 input bytes, "..." when cut. */
static inline const char *escape(const char *p, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 40 && o + 5 < len; i++) {
		const unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
	}
	if (n > 40 && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

/* Which dims scale per step: "ML" for attention (M queries over L keys),
 * "M" (rows scale with tokens per step) for every other kind. */
static inline const char *kind_scales(enum trace_op_kind kind)
{
	return kind == TRACE_OP_ATTENTION ? "ML" : "M";
}

/* ---- msgpack field access (trace_fields.c) ---- */

/* Where an error is: the file and the offset of the record. */
struct pctx {
	const char *path;
	uint64_t off;
	char *err;
	size_t errlen;
};

enum bin_shape {
	BIN_F32_N,    /* n float32 */
	BIN_U32_N,    /* n uint32 */
	BIN_U32_ANY,  /* any number of uint32 */
	BIN_F32_CONT, /* n_cont x lookahead float32 */
};

int tf_perr(const struct pctx *c, const char *pre, const char *field,
            const char *fmt, ...) TRACE_PRINTF(4, 5);
void tf_prefix_loc(const struct pctx *c);
const char *tf_describe(const msgpack_object *o, char *buf, size_t len);
const msgpack_object *tf_map_find(const msgpack_object *map, const char *key);
bool tf_str_eq(const msgpack_object *o, const char *s);
int tf_need(const struct pctx *c, const char *pre, const msgpack_object *map,
            const char *key, const char *what, const msgpack_object **out);
int tf_get_u64(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, uint64_t max, uint64_t *out);
int tf_get_u32(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, uint32_t *out);
int tf_get_f64(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, double *out);
int tf_get_bool(const struct pctx *c, const char *pre,
                const msgpack_object *map, const char *key, int *out);
int tf_copy_str(const struct pctx *c, const char *pre, const char *key,
                const msgpack_object *v, char *buf, size_t cap);
int tf_get_str(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, char *buf, size_t cap);
char *tf_alloc_str(const msgpack_object *v);
int tf_get_bin(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, size_t want, enum bin_shape shape, uint32_t a,
               uint32_t b, bool optional, const msgpack_object_bin **out);
int tf_map_find_dup(const msgpack_object *map, const msgpack_object **dup);
int tf_check_unique(const struct pctx *c, const char *pre,
                    const msgpack_object *map);

/* ---- framing (trace_scan.c) ---- */

enum scan_status { SCAN_DONE, SCAN_MORE, SCAN_BAD, SCAN_CLAIM };

struct scan {
	/* in: bytes from p[0] to the end of the file, or UINT64_MAX when not
	 * known yet (a stream not at its end) */
	uint64_t limit;
	/* out */
	size_t size;      /* SCAN_DONE: bytes of the object */
	size_t need;      /* SCAN_MORE: at least this many bytes */
	size_t at;        /* SCAN_BAD, SCAN_CLAIM: offset in p */
	const char *what; /* SCAN_BAD: why; SCAN_CLAIM: "map", "bin", ... */
	uint64_t claim;   /* SCAN_CLAIM: entries, elements or bytes claimed */
	uint64_t left;    /* SCAN_CLAIM: bytes after the header */
};

enum scan_status tf_scan_object(const unsigned char *p, size_t n,
                                struct scan *sc);

#endif
