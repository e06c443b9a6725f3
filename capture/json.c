/* json.c - recursive-descent strict JSON parser. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

struct jp {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
	int depth;
};

static int fail(struct jp *p, const char *what)
{
	snprintf(p->err, p->errlen, "column %zu: %s", p->pos + 1, what);
	return -EINVAL;
}

static void skip_ws(struct jp *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
	        p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static void clear_value(struct json_value *v)
{
	if (v->type == JSON_STRING) {
		free(v->str);
	} else if (v->type == JSON_ARRAY) {
		for (size_t i = 0; i < v->len; i++)
			clear_value(&v->items[i]);
		free(v->items);
	} else if (v->type == JSON_OBJECT) {
		for (size_t i = 0; i < v->len; i++) {
			free(v->members[i].key);
			clear_value(&v->members[i].val);
		}
		free(v->members);
	}
	memset(v, 0, sizeof *v);
}

static int hex4(struct jp *p, unsigned *out)
{
	unsigned v = 0;

	if (p->len - p->pos < 4)
		return fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos++];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* at the opening quote */
static int parse_string(struct jp *p, char **out, size_t *outlen)
{
	size_t cap = 16, n = 0;
	char *b = malloc(cap);
	int ret = 0;

	if (!b)
		return -ENOMEM;
	p->pos++;
	for (;;) {
		unsigned char c;
		if (cap - n < 8) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto error;
			}
			b = nb;
			cap *= 2;
		}
		if (p->pos >= p->len) {
			ret = fail(p, "unterminated string");
			goto error;
		}
		c = (unsigned char)p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20) {
			p->pos--;
			ret = fail(p,
			           "control character in string (escape it)");
			goto error;
		}
		if (c != '\\') {
			b[n++] = (char)c;
			continue;
		}
		if (p->pos >= p->len) {
			ret = fail(p, "unterminated escape");
			goto error;
		}
		c = (unsigned char)p->s[p->pos++];
		switch (c) {
		case '"': b[n++] = '"'; break;
		case '\\': b[n++] = '\\'; break;
		case '/': b[n++] = '/'; break;
		case 'b': b[n++] = '\b'; break;
		case 'f': b[n++] = '\f'; break;
		case 'n': b[n++] = '\n'; break;
		case 'r': b[n++] = '\r'; break;
		case 't': b[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			ret = hex4(p, &cp);
			if (ret)
				goto error;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (p->len - p->pos < 2 ||
				    p->s[p->pos] != '\\' ||
				    p->s[p->pos + 1] != 'u') {
					ret = fail(p, "unpaired surrogate in "
					              "\\u escape");
					goto error;
				}
				p->pos += 2;
				ret = hex4(p, &lo);
				if (ret)
					goto error;
				if (lo < 0xDC00 || lo > 0xDFFF) {
					ret = fail(p, "bad low surrogate in "
					              "\\u escape");
					goto error;
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				     (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				ret = fail(p,
				           "unpaired surrogate in \\u escape");
				goto error;
			}
			n += put_utf8(b + n, cp);
			break;
		}
		default:
			p->pos--;
			ret = fail(p, "invalid escape in string");
			goto error;
		}
	}
	b[n] = '\0';
	*out = b;
	*outlen = n;
	return 0;
error:
	free(b);
	return ret;
}

static int parse_number(struct jp *p, struct json_value *v)
{
	size_t start = p->pos;
	int digits_only = 1;
	char buf[64];
	char *end;

	if (p->s[p->pos] == '-') {
		p->pos++;
		digits_only = 0;
	}
	if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
		return fail(p, "bad number");
	if (p->s[p->pos] == '0' && p->pos + 1 < p->len &&
	    p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
		return fail(p, "leading zero in number");
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		digits_only = 0;
		p->pos++;
		if (p->pos >= p->len || p->s[p->pos] < '0' ||
		    p->s[p->pos] > '9')
			return fail(p, "digit expected after '.'");
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9')
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		digits_only = 0;
		p->pos++;
		if (p->pos < p->len &&
		    (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || p->s[p->pos] < '0' ||
		    p->s[p->pos] > '9')
			return fail(p, "digit expected in exponent");
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9')
			p->pos++;
	}
	if (p->pos - start >= sizeof buf)
		return fail(p, "number too long");
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = '\0';
	v->type = JSON_NUMBER;
	v->num = strtod(buf, &end);
	if (!isfinite(v->num))
		return fail(p, "number out of range");
	if (digits_only) {
		errno = 0;
		v->u64 = strtoull(buf, &end, 10);
		v->is_uint = errno == 0;
	}
	return 0;
}

static int parse_value(struct jp *p, struct json_value *v);

/* Duplicate keys: a linear scan for small objects; past 16 members an
 * open-addressing index of member numbers (an object of 200k keys took
 * minutes with the scan alone). */
struct key_index {
	size_t *slot; /* member number + 1, 0 = empty */
	size_t cap;   /* 0 or a power of two */
};

static size_t key_hash(const char *k)
{
	size_t h = 1469598103934665603u;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211u;
	return h;
}

/* Insert member i of v; @return 1 if its key was already there, 0, or
 * -ENOMEM. */
static int key_index_add(struct key_index *ix, const struct json_value *v,
                         size_t i)
{
	const char *key = v->members[i].key;
	size_t s;

	if (i < 16) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(v->members[j].key, key) == 0)
				return 1;
		return 0;
	}
	if (2 * (i + 1) > ix->cap) {
		const size_t nc = ix->cap ? 2 * ix->cap : 64;
		size_t *ns = calloc(nc, sizeof *ns);

		if (!ns)
			return -ENOMEM;
		free(ix->slot);
		ix->slot = ns;
		ix->cap = nc;
		for (size_t j = 0; j < i; j++) { /* keys before i are unique */
			for (s = key_hash(v->members[j].key) & (nc - 1); ns[s];
			     s = (s + 1) & (nc - 1))
				;
			ns[s] = j + 1;
		}
	}
	for (s = key_hash(key) & (ix->cap - 1); ix->slot[s];
	     s = (s + 1) & (ix->cap - 1))
		if (strcmp(v->members[ix->slot[s] - 1].key, key) == 0)
			return 1;
	ix->slot[s] = i + 1;
	return 0;
}

static int parse_array(struct jp *p, struct json_value *v)
{
	size_t cap = 0;
	int ret;

	v->type = JSON_ARRAY;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		return 0;
	}
	for (;;) {
		if (v->len == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct json_value *ni = realloc(v->items,
			                                nc * sizeof *ni);
			if (!ni)
				return -ENOMEM;
			v->items = ni;
			cap = nc;
		}
		memset(&v->items[v->len], 0, sizeof v->items[0]);
		v->len++;
		ret = parse_value(p, &v->items[v->len - 1]);
		if (ret)
			return ret;
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, "unterminated array");
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == ']') {
			p->pos++;
			return 0;
		}
		return fail(p, "expected ',' or ']' in array");
	}
}

static int parse_object_members(struct jp *p, struct json_value *v,
                                struct key_index *ix);

static int parse_object(struct jp *p, struct json_value *v)
{
	struct key_index ix = { NULL, 0 };
	int ret;

	v->type = JSON_OBJECT;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		return 0;
	}
	ret = parse_object_members(p, v, &ix);
	free(ix.slot);
	return ret;
}

static int parse_object_members(struct jp *p, struct json_value *v,
                                struct key_index *ix)
{
	size_t cap = 0;
	int ret;

	for (;;) {
		struct json_member *m;
		size_t klen;

		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != '"')
			return fail(p, "expected a string key in object");
		if (v->len == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct json_member *nm = realloc(v->members,
			                                 nc * sizeof *nm);
			if (!nm)
				return -ENOMEM;
			v->members = nm;
			cap = nc;
		}
		m = &v->members[v->len];
		memset(m, 0, sizeof *m);
		ret = parse_string(p, &m->key, &klen);
		if (ret)
			return ret;
		v->len++;
		ret = key_index_add(ix, v, v->len - 1);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			char msg[128];
			snprintf(msg, sizeof msg, "duplicate key \"%.64s\"",
			         m->key);
			return fail(p, msg);
		}
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':')
			return fail(p, "expected ':' after key");
		p->pos++;
		ret = parse_value(p, &m->val);
		if (ret)
			return ret;
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, "unterminated object");
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == '}') {
			p->pos++;
			return 0;
		}
		return fail(p, "expected ',' or '}' in object");
	}
}

static int literal(struct jp *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return fail(p, "unexpected character");
	p->pos += n;
	return 0;
}

static int parse_value(struct jp *p, struct json_value *v)
{
	int ret;
	char c;

	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, "unexpected end of input");
	if (++p->depth > JSON_MAX_DEPTH)
		return fail(p, "nesting too deep");
	c = p->s[p->pos];
	switch (c) {
	case '{': ret = parse_object(p, v); break;
	case '[': ret = parse_array(p, v); break;
	case '"':
		v->type = JSON_STRING;
		ret = parse_string(p, &v->str, &v->len);
		break;
	case 't':
		ret = literal(p, "true");
		v->type = JSON_BOOL;
		v->boolean = 1;
		break;
	case 'f':
		ret = literal(p, "false");
		v->type = JSON_BOOL;
		break;
	case 'n':
		ret = literal(p, "null");
		v->type = JSON_NULL;
		break;
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			ret = parse_number(p, v);
		else
			ret = fail(p, "unexpected character");
		break;
	}
	p->depth--;
	return ret;
}

int json_parse(const char *text, size_t len, struct json_value **out, char *err,
               size_t errlen)
{
	struct jp p = { .s = text, .len = len, .err = err, .errlen = errlen };
	struct json_value *v = calloc(1, sizeof *v);
	int ret;

	*out = NULL;
	if (!v)
		return -ENOMEM;
	ret = parse_value(&p, v);
	if (ret == 0) {
		skip_ws(&p);
		if (p.pos != p.len)
			ret = fail(&p, "trailing characters after the value");
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (ret) {
		json_free(&v);
		return ret;
	}
	*out = v;
	return 0;
}

void json_free(struct json_value **pv)
{
	if (!pv || !*pv)
		return;
	clear_value(*pv);
	free(*pv);
	*pv = NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->len; i++)
		if (strcmp(obj->members[i].key, key) == 0)
			return &obj->members[i].val;
	return NULL;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "boolean";
	case JSON_NUMBER: return "number";
	case JSON_STRING: return "string";
	case JSON_ARRAY: return "array";
	case JSON_OBJECT: return "object";
	}
	return "unknown";
}
