/*
 * core/copytext.c - see copytext.h.
 */
#include "config.h"

#include "copytext.h"

#include <syncd/copytext.h>

#include <stdlib.h>
#include <string.h>

size_t
copytext_parse_row(const char *data, size_t len, uint32_t ncols,
                   syncd_value *vals, strbuf *buf, const char **err)
{
	/* unescaping never grows: len bytes hold every field's text */
	if (buf->cap < len + 1) {
		buf->data = xrealloc(buf->data, len + 1);
		buf->cap = len + 1;
	}
	buf->len = 0;
	return syncd_copytext_parse_row(data, len, ncols, vals, buf->data, err);
}

void
copytext_write_row(strbuf *out, const syncd_value *vals, uint32_t n)
{
	for (uint32_t f = 0; f < n; f++) {
		const char *p = vals[f].data, *run;
		const char *end = p ? p + vals[f].len : p;

		if (f)
			sb_append(out, "\t", 1);
		if (vals[f].kind != SYNCD_VALUE_TEXT) {
			sb_append(out, "\\N", 2);
			continue;
		}
		for (run = p; p < end; p++) {
			const char *esc = NULL;
			switch (*p) {
			case '\\': esc = "\\\\"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			default: continue;
			}
			sb_append(out, run, (size_t) (p - run));
			sb_append(out, esc, 2);
			run = p + 1;
		}
		sb_append(out, run, (size_t) (end - run));
	}
	sb_append(out, "\n", 1);
}
