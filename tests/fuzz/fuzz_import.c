/* fuzz_import.c - the JSON-lines importer (capture/import.c, json.c) on
 * arbitrary bytes. An import that succeeds must have written a trace the
 * reader accepts in full: an import can never produce an unreadable
 * trace. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "fuzz.h"
#include "fuzz_tmpdir.h"
#include "fuzz_util.h"
#include "trace.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return fuzz_tmpdir_create() < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = fuzz_input_file(data, size);
	struct trace_reader *r = NULL;
	struct trace_seq s;
	char err[1024], out[128];
	int ret;

	fuzz_tmpdir_file("import.msgpack", out, sizeof out);
	err[0] = '\0';
	if (capture_import(in, out, err, sizeof err) != 0) {
		fuzz_check(memchr(err, '\0', sizeof err) && err[0] != '\0');
		fuzz_check(access(out, F_OK) != 0); /* nothing left behind */
		return 0;
	}
	fuzz_check(trace_reader_open(&r, out, err, sizeof err) == 0);
	while ((ret = trace_reader_next(r, &s, err, sizeof err)) == 1)
		;
	fuzz_check(ret == 0);
	trace_reader_close(&r);
	unlink(out);
	return 0;
}
