/* trace_scan.c - framing: the extent of the next msgpack object, read
 * from its headers before msgpack-c sees it, so that what msgpack-c
 * allocates is bounded by bytes actually read. */
#include "trace_impl.h"

/* ---- framing: the extent of the next object, before msgpack-c sees it */

static uint64_t be_uint(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Walk the msgpack object at p[0..n) without allocating: headers only,
 * payloads skipped by length, nesting on a fixed stack. A header that
 * claims more bytes than the file has left is reported (SCAN_CLAIM) when
 * the claim is at least TRACE_CHUNK bytes, what the reader would buffer
 * or allocate for it; a smaller shortfall is an ordinary truncation
 * (SCAN_MORE at the end of the file). */
enum scan_status tf_scan_object(const unsigned char *p, size_t n,
                                struct scan *sc)
{
	uint64_t stack[TRACE_MAX_DEPTH];
	uint64_t pending = 1; /* objects still to walk at this level */
	int depth = 0;
	size_t pos = 0;

	for (;;) {
		size_t hl;          /* header length */
		uint64_t body = 0;  /* payload bytes after the header */
		uint64_t items = 0; /* child objects (arrays, maps) */
		const char *kind = NULL;
		unsigned b;

		if (pos >= n) {
			sc->need = pos + 1;
			return SCAN_MORE;
		}
		b = p[pos];
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3) {
			hl = 1;
		} else if (b <= 0x8f) {
			hl = 1, items = 2 * (uint64_t)(b & 0x0f), kind = "map";
		} else if (b <= 0x9f) {
			hl = 1, items = b & 0x0f, kind = "array";
		} else if (b <= 0xbf) {
			hl = 1, body = b & 0x1f, kind = "str";
		} else {
			static const struct {
				unsigned char hl, len, fixed;
				const char *kind;
			} t[32] = {
				[0x04] = { 2, 1, 0, "bin" },
				[0x05] = { 3, 2, 0, "bin" },
				[0x06] = { 5, 4, 0, "bin" },
				[0x07] = { 3, 1, 0, "ext" },
				[0x08] = { 4, 2, 0, "ext" },
				[0x09] = { 6, 4, 0, "ext" },
				[0x0a] = { 1, 0, 4, NULL },
				[0x0b] = { 1, 0, 8, NULL },
				[0x0c] = { 1, 0, 1, NULL },
				[0x0d] = { 1, 0, 2, NULL },
				[0x0e] = { 1, 0, 4, NULL },
				[0x0f] = { 1, 0, 8, NULL },
				[0x10] = { 1, 0, 1, NULL },
				[0x11] = { 1, 0, 2, NULL },
				[0x12] = { 1, 0, 4, NULL },
				[0x13] = { 1, 0, 8, NULL },
				[0x14] = { 1, 0, 2, NULL },
				[0x15] = { 1, 0, 3, NULL },
				[0x16] = { 1, 0, 5, NULL },
				[0x17] = { 1, 0, 9, NULL },
				[0x18] = { 1, 0, 17, NULL },
				[0x19] = { 2, 1, 0, "str" },
				[0x1a] = { 3, 2, 0, "str" },
				[0x1b] = { 5, 4, 0, "str" },
				[0x1c] = { 3, 2, 0, "array" },
				[0x1d] = { 5, 4, 0, "array" },
				[0x1e] = { 3, 2, 0, "map" },
				[0x1f] = { 5, 4, 0, "map" },
			};
			const unsigned x = b - 0xc0;

			if (t[x].hl == 0) { /* 0xc1: never used */
				sc->at = pos;
				sc->what =
				        "byte 0xc1, which msgpack never uses";
				return SCAN_BAD;
			}
			hl = t[x].hl;
			body = t[x].fixed;
			kind = t[x].kind;
			if (t[x].len) {
				if (pos + hl > n) {
					sc->need = pos + hl;
					return SCAN_MORE;
				}
				body = be_uint(p + pos + 1, t[x].len);
				if (strcmp(kind, "array") == 0)
					items = body, body = 0;
				else if (strcmp(kind, "map") == 0)
					items = 2 * body, body = 0;
			}
		}
		if (pos + hl > n) {
			sc->need = pos + hl;
			return SCAN_MORE;
		}
		/* every child takes at least one byte */
		if (kind && (body | items) >= TRACE_CHUNK &&
		    sc->limit != UINT64_MAX &&
		    body + items >
		            (sc->limit > pos + hl ? sc->limit - pos - hl : 0)) {
			sc->at = pos;
			sc->what = kind;
			sc->claim = items ? (kind[0] == 'm' ? items / 2 : items)
			                  : body;
			sc->left = sc->limit > pos + hl ? sc->limit - pos - hl
			                                : 0;
			return SCAN_CLAIM;
		}
		if (items) {
			if (depth == TRACE_MAX_DEPTH) {
				sc->at = pos;
				sc->what = "nesting deeper than 32 levels";
				return SCAN_BAD;
			}
			stack[depth++] = pending - 1;
			pending = items;
			pos += hl;
			continue;
		}
		if (body > n - pos - hl) {
			sc->need = pos + hl + body < (uint64_t)SIZE_MAX
			                   ? (size_t)(pos + hl + body)
			                   : SIZE_MAX;
			return SCAN_MORE;
		}
		pos += hl + (size_t)body;
		pending--;
		while (pending == 0) {
			if (depth == 0) {
				sc->size = pos;
				return SCAN_DONE;
			}
			pending = stack[--depth];
		}
	}
}
