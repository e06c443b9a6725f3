/* api1_writer.c - a runtime as it was built against API 1 of the capture
 * API: this file and api1_records.h see only v1/ahasd_capture.h, the
 * header as released at API 1 (meson.build here gives -I v1 and nothing
 * else with an ahasd_capture.h in it), and run under the current library.
 * It prints the API version its header says and the library's, then
 * writes its capture to argv[1]. */
#include "ahasd_capture.h"

#include "api1_records.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: capture-api1-writer OUT.msgpack\n");
		return 2;
	}
	printf("header API %u, library API %u\n", AHASD_CAPTURE_API_VERSION,
	       ahasd_capture_api_version());
	return api1_write(argv[1]);
}
