/*
 * core/copytext.c - see copytext.h.
 */
#include "config.h"

#include "copytext.h"

#include <stdlib.h>
#include <string.h>

static int
copytext_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
copytext_parse_row(const char *data, size_t len, uint32_t ncols,
                   syncd_value *vals, strbuf *buf, const char **err)
{
	size_t i = 0;
	uint32_t field = 0;
	/* offsets into buf while it may still move */
	size_t *starts = NULL;

	buf->len = 0;
	if (ncols == 0) {
		*err = "a table without columns";
		return 0;
	}
	starts = xcalloc(ncols, sizeof *starts);
	for (;;) {
		bool null = false;

		if (field >= ncols) {
			*err = "more fields than the table has columns";
			free(starts);
			return 0;
		}
		/* \N alone is NULL */
		if (i + 1 < len && data[i] == '\\' && data[i + 1] == 'N' &&
		    (i + 2 == len || data[i + 2] == '\t' ||
		     data[i + 2] == '\n')) {
			null = true;
			i += 2;
		}
		starts[field] = buf->len;
		while (!null && i < len && data[i] != '\t' && data[i] != '\n') {
			char c = data[i++];
			if (c != '\\') {
				sb_append(buf, &c, 1);
				continue;
			}
			if (i >= len) {
				*err = "a backslash at the end of the data";
				free(starts);
				return 0;
			}
			c = data[i++];
			switch (c) {
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'v': c = '\v'; break;
			case 'x':
				if (i < len && copytext_hex(data[i]) >= 0) {
					int v = copytext_hex(data[i++]);
					if (i < len &&
					    copytext_hex(data[i]) >= 0)
						v = v * 16 +
						    copytext_hex(data[i++]);
					c = (char) v;
				}
				break;
			default:
				if (c >= '0' && c <= '7') {
					int v = c - '0';
					for (int k = 0;
					     k < 2 && i < len &&
					     data[i] >= '0' && data[i] <= '7';
					     k++)
						v = v * 8 + (data[i++] - '0');
					c = (char) v;
				}
				break;
			}
			sb_append(buf, &c, 1);
		}
		vals[field].kind = null ? SYNCD_VALUE_NULL : SYNCD_VALUE_TEXT;
		vals[field].len =
		    null ? 0 : (uint32_t) (buf->len - starts[field]);
		field++;
		if (i < len && data[i] == '\t') {
			i++;
			continue;
		}
		if (i < len && data[i] == '\n')
			i++;
		break;
	}
	if (field != ncols) {
		*err = "fewer fields than the table has columns";
		free(starts);
		return 0;
	}
	for (uint32_t f = 0; f < ncols; f++)
		vals[f].data = vals[f].kind == SYNCD_VALUE_NULL ? NULL
		               : buf->data ? buf->data + starts[f]
		                           : "";
	free(starts);
	return i;
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
