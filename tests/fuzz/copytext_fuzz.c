/*
 * tests/fuzz/copytext_fuzz.c - libFuzzer target for the COPY text row
 * parser of the full phase (core/copytext.c): any bytes, any column count;
 * a row that parses is written back and must parse to the same values.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	syncd_value v[16], w[16];
	strbuf buf = {0}, buf2 = {0}, out = {0};
	const char *err = NULL;
	uint32_t n;
	size_t used;

	if (size < 1)
		return 0;
	n = (uint32_t) (data[0] % 16) + 1;
	data++;
	size--;
	while (size > 0) {
		used = copytext_parse_row((const char *) data, size, n, v, &buf,
		                          &err);
		if (used == 0 || used > size)
			break;
		out.len = 0;
		copytext_write_row(&out, v, n);
		if (copytext_parse_row(out.data, out.len, n, w, &buf2, &err) !=
		    out.len)
			abort();
		for (uint32_t i = 0; i < n; i++)
			if (w[i].kind != v[i].kind || w[i].len != v[i].len ||
			    (w[i].len &&
			     memcmp(w[i].data, v[i].data, w[i].len)))
				abort();
		data += used;
		size -= used;
	}
	sb_free(&buf);
	sb_free(&buf2);
	sb_free(&out);
	return 0;
}
