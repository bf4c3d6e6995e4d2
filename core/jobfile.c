/*
 * core/jobfile.c - see jobfile.h.
 *
 * inih does the INI syntax. We feed it through our own line reader so that
 * we know the raw line: its number (Debian's inih is built without line
 * numbers in the handler), whether it is longer than inih can hold, whether
 * it is valid UTF-8, and whether it is an indented continuation line (inih
 * then calls the handler again with the same key). inih strips a UTF-8 BOM,
 * trailing blanks (so CRLF line ends) and "; " inline comments.
 */
#include "config.h"

#include "jobfile.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jf_reader {
	jobfile *jf;
	FILE *f;
	char *line;
	size_t cap;
	int lineno;
	bool indented; /* the current line starts with a blank */
	jf_section *cur;
	jf_key *last; /* key of the previous key line, for continuations */
	strbuf errors;
} jf_reader;

static void jf_error(jf_reader *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
jf_error(jf_reader *r, int line, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sb_printf(&r->errors, "%s:%d: %s\n", r->jf->path, line, msg);
}

static jf_section *
jf_open_section(jf_reader *r, const char *name, int line)
{
	jobfile *jf = r->jf;
	jf_section *s = jobfile_section(jf, name);

	if (s)
		return s;
	jf->sections = xrealloc(jf->sections, (jf->nsections + 1) * sizeof *s);
	s = &jf->sections[jf->nsections++];
	memset(s, 0, sizeof *s);
	s->name = xstrdup(name);
	s->line = line;
	return s;
}

/* Reads one raw line for inih: the whole line, however long, so that we can
 * refuse what inih would cut. */
static char *
jf_read_line(char *str, int num, void *stream)
{
	jf_reader *r = stream;
	ssize_t n;
	size_t max = (size_t) num - 1 < JOBFILE_MAX_LINE ? (size_t) num - 1
	                                                 : JOBFILE_MAX_LINE;

	n = getline(&r->line, &r->cap, r->f);
	if (n < 0)
		return NULL;
	r->lineno++;
	if (n > 0 && r->line[n - 1] == '\n')
		r->line[--n] = '\0';
	if (n > 0 && r->line[n - 1] == '\r')
		r->line[--n] = '\0';
	r->indented = n > 0 && (r->line[0] == ' ' || r->line[0] == '\t');

	if (memchr(r->line, '\0', (size_t) n) != NULL) {
		jf_error(r, r->lineno, "line contains a NUL byte");
		str[0] = '\0';
		return str;
	}
	if (!utf8_valid(r->line, (size_t) n)) {
		jf_error(r, r->lineno,
		         "line is not valid UTF-8; save the job file as UTF-8");
		str[0] = '\0';
		return str;
	}
	if ((size_t) n > max) {
		jf_error(
		    r, r->lineno,
		    "line is %zd characters long, the limit is %zu; continue "
		    "a long value on the next line, indented",
		    n, max);
		str[0] = '\0';
		r->last = NULL;
		return str;
	}

	/* Sections are recorded here so that an empty one is seen too (inih
	 * itself skips a BOM at the start of the file) */
	{
		const char *p = r->line;
		if (r->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
			p += 3;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '[') {
			const char *end = strchr(p, ']');
			if (end) {
				char *name =
				    xstrndup(p + 1, (size_t) (end - p - 1));
				r->cur = jf_open_section(r, name, r->lineno);
				free(name);
			}
			r->last = NULL;
		}
	}
	memcpy(str, r->line, (size_t) n + 1);
	return str;
}

/* Expands ${NAME} from the environment; "$$" is a literal "$". */
static char *
jf_expand(jf_reader *r, const char *v, int line)
{
	strbuf sb = {0};

	for (const char *p = v; *p;) {
		if (p[0] == '$' && p[1] == '$') {
			sb_append(&sb, "$", 1);
			p += 2;
		} else if (p[0] == '$' && p[1] == '{') {
			const char *end = strchr(p + 2, '}');
			char *name;
			const char *val;

			if (!end) {
				jf_error(r, line,
				         "unterminated ${ in value; write $$ "
				         "for a literal $");
				break;
			}
			name = xstrndup(p + 2, (size_t) (end - p - 2));
			val = getenv(name);
			if (!val)
				jf_error(r, line,
				         "environment variable %s is not set "
				         "(used as ${%s})",
				         name, name);
			else
				sb_puts(&sb, val);
			free(name);
			p = end + 1;
		} else {
			sb_append(&sb, p, 1);
			p++;
		}
	}
	return sb_steal(&sb);
}

static int
jf_handler(void *user, const char *section, const char *name, const char *value)
{
	jf_reader *r = user;
	jf_section *s;
	jf_key *k;

	if (r->indented && r->last && strcmp(r->last->name, name) == 0) {
		/* continuation of the previous key's value */
		char *raw = xasprintf("%s%s%s", r->last->value,
		                      *r->last->value ? " " : "", value);
		free(r->last->value);
		r->last->value = raw;
		return 1;
	}
	if (!*section) {
		jf_error(r, r->lineno,
		         "key \"%s\" is outside any section; put it "
		         "under [job], [source], [sink] or another section",
		         name);
		return 1;
	}
	if (!r->cur || strcmp(r->cur->name, section) != 0)
		r->cur =
		    jf_open_section(r, section, r->lineno); /* never differs */
	s = r->cur;
	for (size_t i = 0; i < s->nkeys; i++) {
		if (strcmp(s->keys[i].name, name) == 0) {
			jf_error(
			    r, r->lineno,
			    "[%s] %s is set twice (first at line %d); keep one",
			    section, name, s->keys[i].line);
			r->last = NULL;
			return 1;
		}
	}
	s->keys = xrealloc(s->keys, (s->nkeys + 1) * sizeof *k);
	k = &s->keys[s->nkeys++];
	k->name = xstrdup(name);
	k->value = xstrdup(value);
	k->line = r->lineno;
	r->last = k;
	return 1;
}

jobfile *
jobfile_read(const char *path, char **errors)
{
	FILE *f = fopen(path, "r");
	jobfile *jf;

	if (!f) {
		*errors = xasprintf("%s: could not open job file: %s\n", path,
		                    strerror(errno));
		return NULL;
	}
	jf = jobfile_parse(f, path, errors);
	fclose(f);
	return jf;
}

jobfile *
jobfile_parse(FILE *f, const char *name, char **errors)
{
	jf_reader r = {0};
	int rc;

	r.jf = xcalloc(1, sizeof *r.jf);
	r.jf->path = xstrdup(name);
	r.f = f;
	rc = ini_parse_stream(jf_read_line, &r, jf_handler, &r);
	free(r.line);
	if (rc < 0)
		sb_printf(&r.errors, "%s: could not read job file\n", name);
	else if (rc > 0)
		jf_error(&r, rc,
		         "syntax error: expected \"key = value\", "
		         "\"[section]\" or a comment (; or #)");

	/* ${ENV} expansion, once values are whole */
	for (size_t i = 0; i < r.jf->nsections; i++) {
		jf_section *s = &r.jf->sections[i];
		for (size_t j = 0; j < s->nkeys; j++) {
			char *v =
			    jf_expand(&r, s->keys[j].value, s->keys[j].line);
			free(s->keys[j].value);
			s->keys[j].value = v;
		}
	}
	if (r.errors.len) {
		*errors = sb_steal(&r.errors);
		jobfile_free(r.jf);
		return NULL;
	}
	*errors = NULL;
	return r.jf;
}

jf_section *
jobfile_section(const jobfile *jf, const char *name)
{
	for (size_t i = 0; i < jf->nsections; i++)
		if (strcmp(jf->sections[i].name, name) == 0)
			return &jf->sections[i];
	return NULL;
}

void
jobfile_free(jobfile *jf)
{
	if (!jf)
		return;
	for (size_t i = 0; i < jf->nsections; i++) {
		jf_section *s = &jf->sections[i];
		for (size_t j = 0; j < s->nkeys; j++) {
			free(s->keys[j].name);
			free(s->keys[j].value);
		}
		free(s->keys);
		free(s->name);
	}
	free(jf->sections);
	free(jf->path);
	free(jf);
}
