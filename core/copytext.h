/*
 * core/copytext.h - PostgreSQL's COPY text format, one row at a time: the
 * full phase parses the source's rows into values when transforms must
 * see them, and writes what the transforms made back for the sink. The
 * parser is the SDK's (syncd/copytext.h), with a growing buffer.
 *
 * A row is its fields separated by tabs and ended by a newline; \N alone
 * is NULL; a backslash escapes \b \f \n \r \t \v, the backslash itself,
 * an octal byte (\NNN, 1-3 digits) or a hex byte (\xHH, 1-2 digits), and
 * any other character stands for itself.
 */
#ifndef SYNCD_CORE_COPYTEXT_H
#define SYNCD_CORE_COPYTEXT_H

#include <stddef.h>

#include <syncd/event.h>

#include "util.h"

/* Parses the row at data[0..len) (up to and including its newline, which
 * may be missing at the end of the data) into exactly ncols values whose
 * text lives in *buf (reset first; the values point into it, valid until
 * the next call). Returns the bytes the row took, or 0 when it is malformed
 * (wrong number of fields, a bad escape at the end), with *err set. */
size_t copytext_parse_row(const char *data, size_t len, uint32_t ncols,
                          syncd_value *vals, strbuf *buf, const char **err);

/* Appends vals[0..n) as one row (UNCHANGED values are written as NULL). */
void copytext_write_row(strbuf *out, const syncd_value *vals, uint32_t n);

#endif
