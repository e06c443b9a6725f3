/* fuzz.h - the libFuzzer entry points every target in tests/fuzz defines.
 *
 * With -Dfuzz=true a target links libFuzzer (-fsanitize=fuzzer); otherwise
 * it links main.c, which runs the target over the files and folders named
 * on its command line (the committed seed corpus and regression inputs),
 * so every target is built and exercised on each test pass. */
#ifndef AHASD_FUZZ_H
#define AHASD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional one-time set-up; targets without one define it as a no-op. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test: abort (a finding) when false, in
 * every build type (assert() would vanish under NDEBUG). */
#define fuzz_check(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
