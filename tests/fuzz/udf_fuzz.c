/*
 * tests/fuzz/udf_fuzz.c - libFuzzer target for the additional fields'
 * expressions (plugins/udf): any text parses or fails with a position
 * inside it, and its error renders; what parses is compiled (formats, time
 * zones) and evaluated against rows of text values, NULLs and an
 * unchanged column, which gives a value, NULL, unchanged or an error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/udf/eval.h"
#include "plugins/udf/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fz_rows[][3] = {
    {"42", "2026-03-08 02:30:00.123456+05:30", "añb€"},
    {"-1.5e3", "infinity", ""},
    {NULL, "2026-11-01", "1772928000"},
};

static udf_col_status
fz_column(void *ctx, const char *name, const char **val, size_t *len)
{
	const char *const *row = ctx;
	int i;

	if (strcmp(name, "u") == 0)
		return UDF_COL_UNCHANGED;
	if (strcmp(name, "n") == 0)
		i = 0;
	else if (strcmp(name, "t") == 0)
		i = 1;
	else if (strcmp(name, "s") == 0)
		i = 2;
	else
		return UDF_COL_MISSING;
	*val = row[i];
	*len = row[i] ? strlen(row[i]) : 0;
	return UDF_COL_VALUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *cerr = NULL;
	size_t pos = 0;
	const char *err = NULL;
	expr *e;
	udf_prog *p;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	e = expr_parse(text, &pos, &err);
	if (!e) {
		char *msg;
		if (!err || pos > strlen(text))
			abort();
		msg = expr_error_text(text, pos, err);
		free(msg);
		free(text);
		return 0;
	}
	p = udf_compile(e, &pos, &cerr);
	if (!p) {
		if (!cerr || pos > strlen(text))
			abort();
		free(cerr);
		free(text);
		return 0;
	}
	for (size_t r = 0; r < sizeof fz_rows / sizeof fz_rows[0]; r++) {
		udf_row row = {.column = fz_column,
		               .ctx = (void *) fz_rows[r],
		               .vars = {"db.example", "shop_1", "public",
		                        "orders_1", NULL, "orders_all"},
		               .now_ms = 1772928000123.0 + (double) r};
		const char *out = NULL;
		size_t len = 0;
		udf_result res = udf_eval(p, &row, &out, &len);
		if ((res == UDF_VALUE || res == UDF_ERROR) && !out)
			abort();
		if (res == UDF_VALUE && strlen(out) != len)
			abort();
	}
	udf_prog_free(p);
	free(text);
	return 0;
}
