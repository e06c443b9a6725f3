/* json.h - a small strict JSON (RFC 8259) parser for the importer and for
 * JSON-lines prompt files. No extensions: no comments, no trailing commas,
 * no NaN, duplicate keys rejected. */
#ifndef AHASD_JSON_H
#define AHASD_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_NULL = 0,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type type;
	int boolean;
	double num;
	int is_uint;  /* number is a non-negative integer literal */
	uint64_t u64; /* exact value when is_uint */
	char *str;    /* NUL-terminated (may hold embedded NULs: len) */
	size_t len;   /* string length, array/object element count */
	struct json_value *items;    /* array */
	struct json_member *members; /* object */
};

struct json_member {
	char *key;
	struct json_value val;
};

/** Parse exactly one JSON value (surrounding whitespace allowed).
 * @return 0, -EINVAL with "column N: ..." in err, or -ENOMEM. */
int json_parse(const char *text, size_t len, struct json_value **out, char *err,
               size_t errlen);
void json_free(struct json_value **v);
/** Member of an object by key, or NULL. */
const struct json_value *json_get(const struct json_value *obj,
                                  const char *key);
/** "null", "boolean", "number", "string", "array", "object". */
const char *json_type_name(enum json_type t);

#endif
