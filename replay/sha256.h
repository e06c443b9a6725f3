/* sha256.h - SHA-256 (FIPS 180-4) for provenance hashes. */
#ifndef AHASD_SHA256_H
#define AHASD_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256_ctx {
	uint32_t h[8];
	uint64_t len; /* bytes hashed */
	unsigned char buf[64];
	size_t fill;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
void sha256_final(struct sha256_ctx *c, unsigned char out[32]);
/** Hex digest (65 bytes with NUL) of a buffer. */
void sha256_hex(const void *data, size_t n, char hex[65]);
/** Hex digest of a file. @return 0 or -errno. */
int sha256_file_hex(const char *path, char hex[65]);

#endif
