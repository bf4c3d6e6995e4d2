/*
 * syncd/copytext.h - PostgreSQL's COPY text format, the data of the full
 * phase: helpers for a source that writes it and a sink that reads it.
 * Header only (static inline), nothing to link.
 *
 * A row is its fields separated by tabs and ended by a newline; \N alone
 * is NULL; a backslash escapes \b \f \n \r \t \v, the backslash itself, an
 * octal byte (\NNN, 1-3 digits) or a hex byte (\xHH, 1-2 digits), and any
 * other character stands for itself.
 */
#ifndef SYNCD_COPYTEXT_H
#define SYNCD_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <syncd/event.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes one field's text, escaped, to out (room for 2 * len bytes);
 * returns the bytes written. Write "\\N" for NULL, a tab between fields
 * and a newline after the last. */
static inline size_t
syncd_copytext_escape(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char e = 0;
		switch (in[i]) {
		case '\\': e = '\\'; break;
		case '\n': e = 'n'; break;
		case '\r': e = 'r'; break;
		case '\t': e = 't'; break;
		default: out[o++] = in[i]; continue;
		}
		out[o++] = '\\';
		out[o++] = e;
	}
	return o;
}

static inline int
syncd_copytext_hex_(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses the row at data[0..len) (up to and including its newline, which
 * may be missing at the end of the data) into exactly ncols values, whose
 * unescaped text is written to buf (room for len bytes: unescaping never
 * grows) and which point into it. Returns the bytes the row took, or 0
 * when it is malformed (wrong number of fields, a backslash at the end),
 * with *err set. */
static inline size_t
syncd_copytext_parse_row(const char *data, size_t len, uint32_t ncols,
                         syncd_value *vals, char *buf, const char **err)
{
	size_t i = 0, o = 0;
	uint32_t field = 0;

	if (ncols == 0) {
		*err = "a table without columns";
		return 0;
	}
	for (;;) {
		bool null = false;
		size_t start = o;

		if (field >= ncols) {
			*err = "more fields than the table has columns";
			return 0;
		}
		if (i + 1 < len && data[i] == '\\' && data[i + 1] == 'N' &&
		    (i + 2 == len || data[i + 2] == '\t' ||
		     data[i + 2] == '\n')) {
			null = true;
			i += 2;
		}
		while (!null && i < len && data[i] != '\t' && data[i] != '\n') {
			char c = data[i++];
			if (c == '\\') {
				if (i >= len) {
					*err = "a backslash at the end of the "
					       "data";
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
					if (i < len &&
					    syncd_copytext_hex_(data[i]) >= 0) {
						int v = syncd_copytext_hex_(
						    data[i++]);
						if (i < len &&
						    syncd_copytext_hex_(
						        data[i]) >= 0)
							v = v * 16 +
							    syncd_copytext_hex_(
							        data[i++]);
						c = (char) v;
					}
					break;
				default:
					if (c >= '0' && c <= '7') {
						int v = c - '0';
						for (int k = 0;
						     k < 2 && i < len &&
						     data[i] >= '0' &&
						     data[i] <= '7';
						     k++)
							v = v * 8 +
							    (data[i++] - '0');
						c = (char) v;
					}
					break;
				}
			}
			buf[o++] = c;
		}
		vals[field].kind = null ? SYNCD_VALUE_NULL : SYNCD_VALUE_TEXT;
		vals[field].len = null ? 0 : (uint32_t) (o - start);
		vals[field].data = null ? NULL : buf + start;
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
		return 0;
	}
	return i;
}

#ifdef __cplusplus
}
#endif
#endif
