/*
 * core/options.c - see options.h.
 */
#include "config.h"

#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
options_type_name(syncd_option_type type)
{
	switch (type) {
	case SYNCD_OPT_STRING: return "string";
	case SYNCD_OPT_INT: return "integer";
	case SYNCD_OPT_BOOL: return "boolean";
	case SYNCD_OPT_DURATION: return "duration";
	case SYNCD_OPT_SIZE: return "size";
	case SYNCD_OPT_ENUM: return "enum";
	case SYNCD_OPT_LIST: return "list";
	case SYNCD_OPT_PREFIX: return "prefix";
	}
	return "?";
}

static bool
options_in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; p && *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t) (bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

static void
options_free_value(opt_value *v)
{
	free(v->key);
	free(v->text);
	for (size_t i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof *v);
}

bool
options_parse(const syncd_option *decl, const char *text, opt_value *out,
              const char **err)
{
	static char range_msg[160];
	bool b;

	switch (decl->type) {
	case SYNCD_OPT_STRING:
	case SYNCD_OPT_PREFIX: return true;
	case SYNCD_OPT_INT:
		if (!parse_int64(text, &out->num, err))
			return false;
		break;
	case SYNCD_OPT_BOOL:
		if (!parse_bool(text, &b, err))
			return false;
		out->num = b;
		return true;
	case SYNCD_OPT_DURATION:
		if (!parse_duration_ms(text, decl->unit, &out->num, err))
			return false;
		break;
	case SYNCD_OPT_SIZE:
		if (!parse_size(text, decl->unit, &out->num, err))
			return false;
		break;
	case SYNCD_OPT_ENUM:
		if (!options_in_choices(decl->choices, text)) {
			snprintf(range_msg, sizeof range_msg,
			         "must be one of: %s",
			         decl->choices ? decl->choices : "");
			for (char *p = range_msg; *p; p++)
				if (*p == '|')
					*p = ',';
			*err = range_msg;
			return false;
		}
		return true;
	case SYNCD_OPT_LIST: {
		const char *p = text;
		while (*p) {
			const char *comma = strchr(p, ',');
			const char *end = comma ? comma : p + strlen(p);
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			const char *e = end;
			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e == p) {
				*err = "empty item in list";
				return false;
			}
			out->items = xrealloc(out->items, (out->nitems + 1) *
			                                      sizeof(char *));
			out->items[out->nitems++] =
			    xstrndup(p, (size_t) (e - p));
			if (!comma)
				break;
			p = comma + 1;
			if (!*p) {
				*err = "empty item in list";
				return false;
			}
		}
		return true;
	}
	default: *err = "unknown option type"; return false;
	}
	if ((decl->min || decl->max) &&
	    (out->num < decl->min || out->num > decl->max)) {
		if (decl->type == SYNCD_OPT_INT)
			snprintf(range_msg, sizeof range_msg,
			         "out of range: must be between %lld and %lld",
			         (long long) decl->min, (long long) decl->max);
		else
			snprintf(
			    range_msg, sizeof range_msg,
			    "out of range: must be between %lld and %lld %s",
			    (long long) decl->min, (long long) decl->max,
			    decl->type == SYNCD_OPT_DURATION ? "ms" : "bytes");
		*err = range_msg;
		return false;
	}
	return true;
}

char *
options_check_table(const syncd_option *table)
{
	for (const syncd_option *o = table; o && o->name; o++) {
		opt_value v = {0};
		const char *err;

		if (!*o->name)
			return xstrdup("an option has an empty name");
		if (o->type < SYNCD_OPT_STRING || o->type > SYNCD_OPT_PREFIX)
			return xasprintf("option %s has an unknown type %d",
			                 o->name, (int) o->type);
		if (o->type == SYNCD_OPT_ENUM && (!o->choices || !*o->choices))
			return xasprintf("enum option %s has no choices",
			                 o->name);
		if (o->flags & ~(SYNCD_OPT_REQUIRED | SYNCD_OPT_SECRET))
			return xasprintf("option %s has unknown flags 0x%x",
			                 o->name, (unsigned) o->flags);
		if (o->type == SYNCD_OPT_PREFIX &&
		    o->name[strlen(o->name) - 1] != '.')
			return xasprintf("prefix option %s must end with '.'",
			                 o->name);
		if (!o->help)
			return xasprintf("option %s has no help text", o->name);
		for (const syncd_option *p = table; p < o; p++)
			if (strcmp(p->name, o->name) == 0)
				return xasprintf("option %s is declared twice",
				                 o->name);
		if (o->default_value && *o->default_value &&
		    !options_parse(o, o->default_value, &v, &err)) {
			options_free_value(&v);
			return xasprintf(
			    "option %s has a bad default \"%s\": %s", o->name,
			    o->default_value, err);
		}
		options_free_value(&v);
	}
	return NULL;
}

/* Levenshtein distance, for "did you mean" hints. */
static size_t
options_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), *row, best;

	if (la > 64 || lb > 64)
		return 99;
	row = xcalloc(lb + 1, sizeof *row);
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t m = prev + cost;
			if (row[j] + 1 < m)
				m = row[j] + 1;
			if (row[j - 1] + 1 < m)
				m = row[j - 1] + 1;
			row[j] = m;
			prev = cur;
		}
	}
	best = row[lb];
	free(row);
	return best;
}

static const syncd_option *
options_find(const syncd_option *const *tables, const char *key)
{
	for (size_t t = 0; tables[t]; t++)
		for (const syncd_option *o = tables[t]; o->name; o++) {
			if (o->type == SYNCD_OPT_PREFIX) {
				size_t n = strlen(o->name);
				if (strncmp(key, o->name, n) == 0 && key[n])
					return o;
			} else if (strcmp(o->name, key) == 0)
				return o;
		}
	return NULL;
}

static bool
options_in_section(const jf_section *sec, const char *key)
{
	for (size_t i = 0; sec && i < sec->nkeys; i++)
		if (strcmp(sec->keys[i].name, key) == 0)
			return true;
	return false;
}

static opt_value *
optset_add(optset *os)
{
	os->v = xrealloc(os->v, (os->n + 1) * sizeof *os->v);
	memset(&os->v[os->n], 0, sizeof *os->v);
	return &os->v[os->n++];
}

bool
optset_bind(optset *os, const char *path, const char *name,
            const jf_section *sec, const syncd_option *const *tables,
            strbuf *errors)
{
	size_t before = errors->len;
	int secline = sec ? sec->line : 0;

	memset(os, 0, sizeof *os);
	os->section = xstrdup(name);

	for (size_t i = 0; sec && i < sec->nkeys; i++) {
		const jf_key *k = &sec->keys[i];
		const syncd_option *o = options_find(tables, k->name);
		const char *err;
		opt_value *v;

		if (!o) {
			const char *best = NULL;
			size_t bestd = 4;
			for (size_t t = 0; tables[t]; t++)
				for (const syncd_option *c = tables[t]; c->name;
				     c++) {
					size_t d =
					    options_distance(k->name, c->name);
					if (d < bestd) {
						bestd = d;
						best = c->name;
					}
				}
			if (best)
				sb_printf(errors,
				          "%s:%d: [%s] unknown key \"%s\"; did "
				          "you mean \"%s\"?\n",
				          path, k->line, name, k->name, best);
			else
				sb_printf(errors,
				          "%s:%d: [%s] unknown key \"%s\"; "
				          "see syncd --plugin-help for the "
				          "keys of a plugin\n",
				          path, k->line, name, k->name);
			continue;
		}
		if (!*k->value) {
			if (o->flags & SYNCD_OPT_REQUIRED)
				sb_printf(errors,
				          "%s:%d: [%s] %s is required and may "
				          "not be empty\n",
				          path, k->line, name, k->name);
			continue; /* empty: the default applies */
		}
		v = optset_add(os);
		v->decl = o;
		v->key = xstrdup(k->name);
		v->text = xstrdup(k->value);
		v->line = k->line;
		if (!options_parse(o, k->value, v, &err))
			sb_printf(errors,
			          "%s:%d: [%s] %s = %s: %s (%s expected)\n",
			          path, k->line, name, k->name, k->value, err,
			          options_type_name(o->type));
	}

	/* defaults and required keys */
	for (size_t t = 0; tables[t]; t++)
		for (const syncd_option *o = tables[t]; o->name; o++) {
			opt_value *v;
			const char *err;

			if (o->type == SYNCD_OPT_PREFIX)
				continue;
			if (optset_get(os, o->name))
				continue;
			if (o->flags & SYNCD_OPT_REQUIRED) {
				if (!sec)
					sb_printf(errors,
					          "%s: section [%s] is "
					          "missing; it needs "
					          "at least %s (%s)\n",
					          path, name, o->name, o->help);
				else if (!options_in_section(sec, o->name))
					sb_printf(
					    errors,
					    "%s:%d: [%s] %s is required (%s)\n",
					    path, secline, name, o->name,
					    o->help);
				continue;
			}
			v = optset_add(os);
			v->decl = o;
			v->key = xstrdup(o->name);
			if (o->default_value && *o->default_value) {
				v->text = xstrdup(o->default_value);
				if (!options_parse(o, o->default_value, v,
				                   &err))
					sb_printf(
					    errors,
					    "%s: [%s] %s: bad default: %s\n",
					    path, name, o->name, err);
			}
		}
	return errors->len == before;
}

/* The size a field of each type must have. */
static size_t
options_field_size(syncd_option_type type)
{
	switch (type) {
	case SYNCD_OPT_STRING:
	case SYNCD_OPT_ENUM: return sizeof(const char *);
	case SYNCD_OPT_INT:
	case SYNCD_OPT_DURATION:
	case SYNCD_OPT_SIZE: return sizeof(int64_t);
	case SYNCD_OPT_BOOL: return sizeof(bool);
	case SYNCD_OPT_LIST: return sizeof(syncd_list);
	case SYNCD_OPT_PREFIX: return sizeof(syncd_pairs);
	}
	return 0;
}

char *
options_check_fields(const syncd_option *table, size_t options_size)
{
	for (const syncd_option *o = table; o && o->name; o++) {
		if (o->field_size == 0)
			continue;
		if (options_size == 0)
			return xasprintf(
			    "option %s has a field but the plugin "
			    "declares no option structure: set "
			    ".options_size = sizeof(the structure) "
			    "in SYNCD_PLUGIN()",
			    o->name);
		if (o->field_size != options_field_size(o->type))
			return xasprintf("option %s is a %s but its field has "
			                 "%u bytes (expected %zu): declare "
			                 "the field with the type "
			                 "syncd/option.h gives a %s",
			                 o->name, options_type_name(o->type),
			                 o->field_size,
			                 options_field_size(o->type),
			                 options_type_name(o->type));
		if (o->offset > options_size ||
		    o->field_size > options_size - o->offset)
			return xasprintf(
			    "option %s is stored at offset %zu, outside the "
			    "option structure of %zu bytes (options_size)",
			    o->name, o->offset, options_size);
	}
	return NULL;
}

static void *
optset_own(optset *os, size_t n)
{
	void *p = xcalloc(n ? n : 1, sizeof(char *));
	os->owned = xrealloc(os->owned, (os->nowned + 1) * sizeof *os->owned);
	os->owned[os->nowned++] = p;
	return p;
}

void
optset_fill(optset *os, const syncd_option *table, void *dst, size_t size)
{
	memset(dst, 0, size);
	for (const syncd_option *o = table; o && o->name; o++) {
		char *field = (char *) dst + o->offset;
		const opt_value *v;

		if (o->field_size == 0)
			continue;
		if (o->type == SYNCD_OPT_PREFIX) {
			size_t n = 0;
			const char **keys, **values;
			for (size_t i = 0; i < os->n; i++)
				n += os->v[i].decl == o;
			keys = optset_own(os, n);
			values = optset_own(os, n);
			n = 0;
			for (size_t i = 0; i < os->n; i++)
				if (os->v[i].decl == o) {
					keys[n] = os->v[i].key;
					values[n++] = os->v[i].text;
				}
			*(syncd_pairs *) field = (syncd_pairs){n, keys, values};
			continue;
		}
		v = optset_get(os, o->name);
		if (!v)
			continue;
		switch (o->type) {
		case SYNCD_OPT_STRING:
		case SYNCD_OPT_ENUM: *(const char **) field = v->text; break;
		case SYNCD_OPT_INT:
		case SYNCD_OPT_DURATION:
		case SYNCD_OPT_SIZE: *(int64_t *) field = v->num; break;
		case SYNCD_OPT_BOOL: *(bool *) field = v->num != 0; break;
		case SYNCD_OPT_LIST:
			*(syncd_list *) field = (syncd_list){
			    v->nitems, (const char *const *) v->items};
			break;
		case SYNCD_OPT_PREFIX: break;
		}
	}
}

void
optset_free(optset *os)
{
	for (size_t i = 0; i < os->nowned; i++)
		free(os->owned[i]);
	free(os->owned);
	for (size_t i = 0; i < os->n; i++)
		options_free_value(&os->v[i]);
	free(os->v);
	free(os->section);
	memset(os, 0, sizeof *os);
}

const opt_value *
optset_get(const optset *os, const char *name)
{
	for (size_t i = 0; i < os->n; i++)
		if (strcmp(os->v[i].key, name) == 0)
			return &os->v[i];
	return NULL;
}

/* A declared option of the core's own tables: a missing one is a bug. */
static const opt_value *
optset_must(const optset *os, const char *name)
{
	const opt_value *v = optset_get(os, name);
	if (!v) {
		fprintf(
		    stderr,
		    "syncd: internal error: option %s not declared in [%s]\n",
		    name, os->section);
		abort();
	}
	return v;
}

const char *
optset_str(const optset *os, const char *name)
{
	return optset_must(os, name)->text;
}

int64_t
optset_num(const optset *os, const char *name)
{
	return optset_must(os, name)->num;
}
