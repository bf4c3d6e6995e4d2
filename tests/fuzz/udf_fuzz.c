/*
 * tests/fuzz/udf_fuzz.c - libFuzzer target for the parser of additional
 * field expressions (plugins/udf/expr.c): any text parses or fails with a
 * position inside it, and its error renders.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/udf/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	size_t pos = 0;
	const char *err = NULL;
	expr *e;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	e = expr_parse(text, &pos, &err);
	if (e)
		expr_free(e);
	else {
		char *msg;
		if (!err || pos > strlen(text))
			abort();
		msg = expr_error_text(text, pos, err);
		free(msg);
	}
	free(text);
	return 0;
}
