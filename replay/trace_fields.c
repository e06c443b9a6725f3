/* trace_fields.c - the reader's access to msgpack objects: typed fields
 * with messages that name the file, offset and field, and duplicate-key
 * checks. */
#include "trace_impl.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>

/* ------------------------------------------------------------------------ */
/* reader: msgpack object access                                             */

int tf_perr(const struct pctx *c, const char *pre, const char *field,
            const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->err || c->errlen == 0)
		return -EINVAL;
	n = snprintf(c->err, c->errlen,
	             "%s: offset %" PRIu64 ": field '%s%s': ", c->path, c->off,
	             pre, field);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Prefix the message in c->err with "PATH: offset N: ". */
void tf_prefix_loc(const struct pctx *c)
{
	char pre[512];

	snprintf(pre, sizeof pre, "%s: offset %" PRIu64 ": ", c->path, c->off);
	prefix_err(c->err, c->errlen, pre);
}

/* "str \"abc\"", "unsigned integer 5", "bin of 12 bytes", ... */
const char *tf_describe(const msgpack_object *o, char *buf, size_t len)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: snprintf(buf, len, "nil"); break;
	case MSGPACK_OBJECT_BOOLEAN:
		snprintf(buf, len, "bool %s",
		         o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(buf, len, "unsigned integer %" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(buf, len, "negative integer %" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: {
		char num[UTIL_NUM_LEN];

		snprintf(buf, len, "float %s",
		         util_fmt_double(num, o->via.f64));
		break;
	}
	case MSGPACK_OBJECT_STR: {
		char e[200];

		snprintf(buf, len, "str \"%s\"",
		         escape(o->via.str.ptr, o->via.str.size, e, sizeof e));
		break;
	}
	case MSGPACK_OBJECT_BIN:
		snprintf(buf, len, "bin of %" PRIu32 " bytes", o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		snprintf(buf, len, "array of %" PRIu32, o->via.array.size);
		break;
	case MSGPACK_OBJECT_MAP:
		snprintf(buf, len, "map of %" PRIu32 " entries",
		         o->via.map.size);
		break;
	default: snprintf(buf, len, "ext type"); break;
	}
	return buf;
}

const msgpack_object *tf_map_find(const msgpack_object *map, const char *key)
{
	const size_t klen = strlen(key);
	const msgpack_object_kv *kv = map->via.map.ptr;

	for (uint32_t i = 0; i < map->via.map.size; i++) {
		if (kv[i].key.type == MSGPACK_OBJECT_STR &&
		    kv[i].key.via.str.size == klen &&
		    memcmp(kv[i].key.via.str.ptr, key, klen) == 0)
			return &kv[i].val;
	}
	return NULL;
}

bool tf_str_eq(const msgpack_object *o, const char *s)
{
	const size_t len = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
	       memcmp(o->via.str.ptr, s, len) == 0;
}

/* Find key or fail with "expected WHAT, got nothing (missing)". */
int tf_need(const struct pctx *c, const char *pre, const msgpack_object *map,
            const char *key, const char *what, const msgpack_object **out)
{
	*out = tf_map_find(map, key);
	if (!*out)
		return tf_perr(c, pre, key,
		               "expected %s, got nothing (missing)", what);
	return 0;
}

int tf_get_u64(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, uint64_t max, uint64_t *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = tf_need(c, pre, map, key, "an unsigned integer", &v);

	if (ret < 0)
		return ret;
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return tf_perr(c, pre, key,
		               "expected an unsigned integer, got %s",
		               tf_describe(v, d, sizeof d));
	if (v->via.u64 > max)
		return tf_perr(c, pre, key,
		               "expected an unsigned integer <= %" PRIu64
		               ", got %" PRIu64,
		               max, v->via.u64);
	*out = v->via.u64;
	return 0;
}

int tf_get_u32(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, uint32_t *out)
{
	uint64_t v;
	int ret = tf_get_u64(c, pre, map, key, UINT32_MAX, &v);

	if (ret == 0)
		*out = (uint32_t)v;
	return ret;
}

int tf_get_f64(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, double *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = tf_need(c, pre, map, key, "a number", &v);

	if (ret < 0)
		return ret;
	switch (v->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: *out = v->via.f64; return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double)v->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double)v->via.i64;
		return 0;
	default:
		return tf_perr(c, pre, key, "expected a number, got %s",
		               tf_describe(v, d, sizeof d));
	}
}

int tf_get_bool(const struct pctx *c, const char *pre,
                const msgpack_object *map, const char *key, int *out)
{
	const msgpack_object *v;
	char d[256];
	int ret = tf_need(c, pre, map, key, "a bool", &v);

	if (ret < 0)
		return ret;
	if (v->type != MSGPACK_OBJECT_BOOLEAN)
		return tf_perr(c, pre, key, "expected a bool, got %s",
		               tf_describe(v, d, sizeof d));
	*out = v->via.boolean ? 1 : 0;
	return 0;
}

/* Copy a str object into buf (NUL-terminated, no embedded NUL). */
int tf_copy_str(const struct pctx *c, const char *pre, const char *key,
                const msgpack_object *v, char *buf, size_t cap)
{
	char d[256];

	if (v->type != MSGPACK_OBJECT_STR)
		return tf_perr(c, pre, key, "expected a string, got %s",
		               tf_describe(v, d, sizeof d));
	if (v->via.str.size >= cap)
		return tf_perr(c, pre, key,
		               "expected a string of at most %zu bytes, "
		               "got %" PRIu32 " bytes",
		               cap - 1, v->via.str.size);
	if (memchr(v->via.str.ptr, '\0', v->via.str.size))
		return tf_perr(c, pre, key,
		               "expected a string without NUL bytes, "
		               "got one with");
	memcpy(buf, v->via.str.ptr, v->via.str.size);
	buf[v->via.str.size] = '\0';
	return 0;
}

int tf_get_str(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, char *buf, size_t cap)
{
	const msgpack_object *v;
	int ret = tf_need(c, pre, map, key, "a string", &v);

	if (ret < 0)
		return ret;
	return tf_copy_str(c, pre, key, v, buf, cap);
}

char *tf_alloc_str(const msgpack_object *v)
{
	char *s = malloc((size_t)v->via.str.size + 1);

	if (s) {
		memcpy(s, v->via.str.ptr, v->via.str.size);
		s[v->via.str.size] = '\0';
	}
	return s;
}

/* A bin of exactly `want` bytes (BIN_U32_ANY: any multiple of 4); a and b
 * are n, or n_cont and lookahead, for the error text only. */
int tf_get_bin(const struct pctx *c, const char *pre, const msgpack_object *map,
               const char *key, size_t want, enum bin_shape shape, uint32_t a,
               uint32_t b, bool optional, const msgpack_object_bin **out)
{
	const msgpack_object *v = tf_map_find(map, key);
	char d[256], what[96];

	*out = NULL;
	if (v && v->type == MSGPACK_OBJECT_BIN &&
	    (shape == BIN_U32_ANY ? v->via.bin.size % 4 == 0
	                          : v->via.bin.size == want)) {
		*out = &v->via.bin;
		return 0; /* the common case, no formatting */
	}
	if (optional && (!v || v->type == MSGPACK_OBJECT_NIL))
		return 0;
	switch (shape) {
	case BIN_F32_N:
		snprintf(what, sizeof what,
		         "%zu bytes (n = %" PRIu32 " float32)", want, a);
		break;
	case BIN_U32_N:
		snprintf(what, sizeof what,
		         "%zu bytes (n = %" PRIu32 " uint32)", want, a);
		break;
	case BIN_U32_ANY:
		snprintf(what, sizeof what, "uint32 (a multiple of 4 bytes)");
		break;
	default:
		snprintf(what, sizeof what,
		         "%zu bytes (n_cont %" PRIu32 " x lookahead %" PRIu32
		         " float32)",
		         want, a, b);
		break;
	}
	if (!v) {
		return tf_perr(c, pre, key,
		               "expected a bin of %s, got nothing "
		               "(missing)",
		               what);
	}
	if (v->type != MSGPACK_OBJECT_BIN)
		return tf_perr(c, pre, key, "expected a bin of %s, got %s",
		               what, tf_describe(v, d, sizeof d));
	return tf_perr(c, pre, key,
	               "expected a bin of %s, got %" PRIu32 " bytes", what,
	               v->via.bin.size);
}

/* The first string key a map gives twice, or NULL. Maps of records and
 * models are small; provenance may hold TRACE_MAX_PROV entries, so larger
 * maps are checked by sorting. @return 0 or -ENOMEM. */
static int cmp_key_obj(const void *a, const void *b)
{
	const msgpack_object *const *x = a, *const *y = b;
	const uint32_t lx = (*x)->via.str.size, ly = (*y)->via.str.size;
	const int c = memcmp((*x)->via.str.ptr, (*y)->via.str.ptr,
	                     lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

static bool key_eq(const msgpack_object *a, const msgpack_object *b)
{
	return a->via.str.size == b->via.str.size &&
	       memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

int tf_map_find_dup(const msgpack_object *map, const msgpack_object **dup)
{
	const msgpack_object_kv *kv = map->via.map.ptr;
	const uint32_t n = map->via.map.size;
	const msgpack_object **keys;
	size_t nk = 0;

	*dup = NULL;
	if (n <= 16) {
		for (uint32_t i = 1; i < n; i++) {
			if (kv[i].key.type != MSGPACK_OBJECT_STR)
				continue;
			for (uint32_t j = 0; j < i; j++)
				if (kv[j].key.type == MSGPACK_OBJECT_STR &&
				    key_eq(&kv[i].key, &kv[j].key)) {
					*dup = &kv[i].key;
					return 0;
				}
		}
		return 0;
	}
	keys = malloc(n * sizeof *keys);
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (kv[i].key.type == MSGPACK_OBJECT_STR)
			keys[nk++] = &kv[i].key;
	qsort(keys, nk, sizeof *keys, cmp_key_obj);
	for (size_t i = 1; i < nk && !*dup; i++)
		if (key_eq(keys[i], keys[i - 1]))
			*dup = keys[i];
	free(keys);
	return 0;
}

/* Refuse a map that gives a key twice: "field 'PRE KEY': duplicate key". */
int tf_check_unique(const struct pctx *c, const char *pre,
                    const msgpack_object *map)
{
	const msgpack_object *dup;
	char e[200];

	if (tf_map_find_dup(map, &dup) < 0) {
		util_set_err(c->err, c->errlen,
		             "%s: offset %" PRIu64 ": out of "
		             "memory checking a map of %" PRIu32 " entries",
		             c->path, c->off, map->via.map.size);
		return -ENOMEM;
	}
	if (!dup)
		return 0;
	return tf_perr(c, pre,
	               escape(dup->via.str.ptr, dup->via.str.size, e, sizeof e),
	               "duplicate key (the map gives it twice)");
}
