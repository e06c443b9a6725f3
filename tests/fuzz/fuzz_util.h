/* fuzz_util.h - the input of a fuzz target as a file: the parsers under
 * test take paths. A memfd (no disk traffic) rewritten for each input,
 * opened by the parser through /proc/self/fd/N. */
#ifndef AHASD_FUZZ_UTIL_H
#define AHASD_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* @return the path of a file holding exactly data[0..size); aborts on a
 * system error (that is not a finding in the code under test). */
static inline const char *fuzz_input_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];

	if (fd < 0) {
		fd = memfd_create("ahasd-fuzz-input", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0) {
		perror("ftruncate");
		abort();
	}
	for (size_t off = 0; off < size;) {
		const ssize_t w = pwrite(fd, data + off, size - off,
		                         (off_t)off);

		if (w <= 0) {
			perror("pwrite");
			abort();
		}
		off += (size_t)w;
	}
	return path;
}

#endif
