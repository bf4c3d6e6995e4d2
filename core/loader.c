/*
 * core/loader.c - see loader.h.
 *
 * A plugin is refused, with the file and the reason, when: it cannot be
 * opened as a module; it has no entry function; the descriptor's magic is
 * wrong; its ABI major differs from ours; its ABI minor is newer than ours;
 * a structure it hands over is larger than ours (newer) or smaller than the
 * first version's (corrupt); its kind or name is invalid or the name differs
 * from the file's; a required operation is missing; its option table is
 * malformed. Nothing of the plugin is called before these checks pass.
 */
#include "config.h"

#include "loader.h"
#include "options.h"

#include <dirent.h>
#include <ltdl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char **loader_dirs;
static size_t loader_ndirs;
static loaded_plugin **loader_cache;
static size_t loader_ncache;
static lt_dladvise loader_advise;
static bool loader_ready;

static void
loader_add_dir(const char *dir)
{
	if (!dir || !*dir)
		return;
	for (size_t i = 0; i < loader_ndirs; i++)
		if (strcmp(loader_dirs[i], dir) == 0)
			return;
	loader_dirs =
	    xrealloc(loader_dirs, (loader_ndirs + 1) * sizeof(char *));
	loader_dirs[loader_ndirs++] = xstrdup(dir);
}

/* A syncd run from its build tree (not installed) finds the plugins built
 * with it, before installed ones of maybe another ABI: DIR/plugins next to
 * the executable, recognised by libtool's .libs in it. */
static void
loader_build_tree(void)
{
	char exe[4096], *slash, *dir;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	struct stat st;

	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	dir = xasprintf("%s/plugins/.libs", exe);
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		dir[strlen(dir) - 6] = '\0'; /* DIR/plugins */
		loader_add_dir(dir);
	}
	free(dir);
}

void
loader_init(const char *plugin_dir)
{
	const char *env = getenv("SYNCD_PLUGIN_PATH");

	if (!loader_ready) {
		lt_dlinit();
		lt_dladvise_init(&loader_advise);
		lt_dladvise_ext(&loader_advise);
		loader_ready = true;
	}
	loader_add_dir(plugin_dir);
	if (env) {
		char *copy = xstrdup(env), *save = NULL;
		for (char *d = strtok_r(copy, ":", &save); d;
		     d = strtok_r(NULL, ":", &save))
			loader_add_dir(d);
		free(copy);
	}
	loader_build_tree();
	loader_add_dir(PLUGINDIR);
}

void
loader_shutdown(void)
{
	for (size_t i = 0; i < loader_ncache; i++) {
		/* Modules stay mapped until exit: unloading them would make
		 * leak reports and late callbacks point into nothing. */
		free(loader_cache[i]->name);
		free(loader_cache[i]->path);
		free(loader_cache[i]->options);
		free(loader_cache[i]);
	}
	free(loader_cache);
	loader_cache = NULL;
	loader_ncache = 0;
	for (size_t i = 0; i < loader_ndirs; i++)
		free(loader_dirs[i]);
	free(loader_dirs);
	loader_dirs = NULL;
	loader_ndirs = 0;
}

const char *
loader_kind_name(syncd_plugin_kind kind)
{
	switch (kind) {
	case SYNCD_KIND_SOURCE: return "source";
	case SYNCD_KIND_TRANSFORM: return "transform";
	case SYNCD_KIND_SINK: return "sink";
	case SYNCD_KIND_ARCHIVER: return "archiver";
	}
	return "unknown";
}

char *
loader_search_path(void)
{
	strbuf sb = {0};
	for (size_t i = 0; i < loader_ndirs; i++)
		sb_printf(&sb, "%s\n", loader_dirs[i]);
	return sb_steal(&sb);
}

/* "dir/foo.so" -> "foo" */
static char *
loader_basename(const char *path)
{
	const char *b = strrchr(path, '/');
	char *name = xstrdup(b ? b + 1 : path);
	char *dot = strchr(name, '.');
	if (dot)
		*dot = '\0';
	return name;
}

static bool
loader_valid_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

/* Copies a versioned structure of src_size bytes into a core-sized, zeroed
 * dst. Returns false when src_size is outside [min, dst_size]. */
static bool
loader_copy_sized(void *dst, size_t dst_size, const void *src, size_t src_size,
                  size_t min)
{
	memset(dst, 0, dst_size);
	if (src_size < min || src_size > dst_size)
		return false;
	memcpy(dst, src, src_size);
	return true;
}

#define LOADER_REQUIRE(cond, opname)                                           \
	do {                                                                   \
		if (!(cond)) {                                                 \
			missing = opname;                                      \
			goto missing_op;                                       \
		}                                                              \
	} while (0)

/* Checks the descriptor and fills p->d and p->ops. */
static char *
loader_check(loaded_plugin *p, const syncd_plugin *desc)
{
	const char *f = p->path, *missing = NULL;
	const void *ops;
	size_t ops_size = 0, dst_size = 0, min = 0;
	char *err, *base;

	if (!desc)
		return xasprintf("%s: refused: its entry function returned no "
		                 "descriptor",
		                 f);
	if (desc->magic != SYNCD_ABI_MAGIC)
		return xasprintf(
		    "%s: refused: wrong magic 0x%08x in its descriptor; "
		    "it is not a syncd plugin, or it is corrupt",
		    f, (unsigned) desc->magic);
	if (desc->abi_major != SYNCD_ABI_MAJOR)
		return xasprintf(
		    "%s: refused: built for plugin ABI %u.%u, this syncd "
		    "speaks ABI %d.%d; rebuild the plugin against this "
		    "syncd's SDK",
		    f, desc->abi_major, desc->abi_minor, SYNCD_ABI_MAJOR,
		    SYNCD_ABI_MINOR);
	if (desc->abi_minor > SYNCD_ABI_MINOR)
		return xasprintf(
		    "%s: refused: built for plugin ABI %u.%u, newer than "
		    "this syncd's %d.%d; upgrade syncd or rebuild the "
		    "plugin against this SDK",
		    f, desc->abi_major, desc->abi_minor, SYNCD_ABI_MAJOR,
		    SYNCD_ABI_MINOR);
	if (!loader_copy_sized(&p->d, sizeof p->d, desc, desc->size,
	                       SYNCD_PLUGIN_SIZE_1_0))
		return xasprintf(
		    "%s: refused: descriptor size %u does not match ABI "
		    "%u.%u (expected %zu to %zu); the plugin is corrupt",
		    f, desc->size, desc->abi_major, desc->abi_minor,
		    (size_t) SYNCD_PLUGIN_SIZE_1_0, sizeof(syncd_plugin));
	if (desc->option_size < SYNCD_OPTION_SIZE_1_0 ||
	    desc->option_size > sizeof(syncd_option))
		return xasprintf(
		    "%s: refused: option entry size %u, expected %zu to %zu; "
		    "rebuild the plugin against this syncd's SDK",
		    f, desc->option_size, (size_t) SYNCD_OPTION_SIZE_1_0,
		    sizeof(syncd_option));
	if (!loader_valid_name(p->d.name))
		return xasprintf(
		    "%s: refused: plugin name \"%s\" is not made of "
		    "[a-z0-9_]",
		    f, p->d.name ? p->d.name : "(null)");
	base = loader_basename(f);
	if (strcmp(base, p->d.name) != 0) {
		err = xasprintf(
		    "%s: refused: the file is named %s but the plugin "
		    "calls itself %s; rename one of them",
		    f, base, p->d.name);
		free(base);
		return err;
	}
	free(base);
	if (!p->d.version)
		return xasprintf("%s: refused: plugin %s has no version", f,
		                 p->d.name);

	ops = p->d.ops.source;
	if (!ops)
		return xasprintf(
		    "%s: refused: plugin %s has no operations table", f,
		    p->d.name);
	ops_size = *(const uint32_t *) ops;
	switch (p->d.kind) {
	case SYNCD_KIND_SOURCE:
		dst_size = sizeof p->ops.source;
		min = SYNCD_SOURCE_OPS_SIZE_1_0;
		break;
	case SYNCD_KIND_TRANSFORM:
		dst_size = sizeof p->ops.transform;
		min = SYNCD_TRANSFORM_OPS_SIZE_1_0;
		break;
	case SYNCD_KIND_SINK:
		dst_size = sizeof p->ops.sink;
		min = SYNCD_SINK_OPS_SIZE_1_0;
		break;
	case SYNCD_KIND_ARCHIVER:
		dst_size = sizeof p->ops.archiver;
		min = SYNCD_ARCHIVER_OPS_SIZE_1_0;
		break;
	default:
		return xasprintf("%s: refused: unknown plugin kind %d", f,
		                 (int) p->d.kind);
	}
	if (!loader_copy_sized(&p->ops, dst_size, ops, ops_size, min))
		return xasprintf(
		    "%s: refused: %s operations table size %zu does not "
		    "match ABI %u.%u (expected %zu to %zu); rebuild the "
		    "plugin",
		    f, loader_kind_name(p->d.kind), ops_size, desc->abi_major,
		    desc->abi_minor, min, dst_size);

	switch (p->d.kind) {
	case SYNCD_KIND_SOURCE: {
		const syncd_source_ops *o = &p->ops.source;
		int stream = !!o->open + !!o->start + !!o->read + !!o->confirm +
		             !!o->close;
		int full = !!o->snapshot + !!o->release + !!o->copy_open +
		           !!o->copy_read + !!o->copy_close;
		LOADER_REQUIRE(o->create, "create");
		LOADER_REQUIRE(o->destroy, "destroy");
		LOADER_REQUIRE(stream == 0 || stream == 5,
		               "open, start, read, confirm and close (all "
		               "five or none)");
		LOADER_REQUIRE(full == 0 || full == 5,
		               "snapshot, release, copy_open, copy_read and "
		               "copy_close (all five or none)");
		LOADER_REQUIRE(
		    stream || full,
		    "open/start/read/confirm/close or "
		    "snapshot/release/copy_open/copy_read/copy_close "
		    "(a source must stream or copy)");
		break;
	}
	case SYNCD_KIND_TRANSFORM:
		LOADER_REQUIRE(p->ops.transform.create, "create");
		LOADER_REQUIRE(p->ops.transform.destroy, "destroy");
		LOADER_REQUIRE(p->ops.transform.apply, "apply");
		break;
	case SYNCD_KIND_SINK:
		LOADER_REQUIRE(p->ops.sink.create, "create");
		LOADER_REQUIRE(p->ops.sink.destroy, "destroy");
		LOADER_REQUIRE(p->ops.sink.open, "open");
		LOADER_REQUIRE(p->ops.sink.close, "close");
		LOADER_REQUIRE(p->ops.sink.write, "write");
		{
			const syncd_sink_ops *o = &p->ops.sink;
			int copy = !!o->copy_open + !!o->copy_close +
			           !!o->copy_table + !!o->copy_begin +
			           !!o->copy_data + !!o->copy_end;
			LOADER_REQUIRE(
			    copy == 0 || copy == 6,
			    "copy_open, copy_close, copy_table, "
			    "copy_begin, copy_data and copy_end (all "
			    "six or none)");
			copy = !!o->origin_get + !!o->origin_set + !!o->forget;
			LOADER_REQUIRE(copy == 0 || copy == 3,
			               "origin_get, origin_set and forget (all "
			               "three or none)");
		}
		break;
	case SYNCD_KIND_ARCHIVER:
		LOADER_REQUIRE(p->ops.archiver.create, "create");
		LOADER_REQUIRE(p->ops.archiver.destroy, "destroy");
		LOADER_REQUIRE(p->ops.archiver.write, "write");
		break;
	}

	/* the option table, copied into core-sized entries */
	if (p->d.options) {
		size_t n = 0;
		const char *e = (const char *) p->d.options;
		while (
		    ((const syncd_option *) (e + n * desc->option_size))->name)
			n++;
		p->options = xcalloc(n + 1, sizeof *p->options);
		for (size_t i = 0; i < n; i++)
			memcpy(&p->options[i], e + i * desc->option_size,
			       desc->option_size);
		p->d.options = p->options;
	}
	err = options_check_table(p->d.options);
	if (!err)
		err = options_check_fields(p->d.options, p->d.options_size);
	if (err) {
		char *msg =
		    xasprintf("%s: refused: bad option table: %s", f, err);
		free(err);
		return msg;
	}
	return NULL;

missing_op:
	return xasprintf(
	    "%s: refused: %s plugin %s lacks the required operation "
	    "%s",
	    f, loader_kind_name(p->d.kind), p->d.name, missing);
}

static const loaded_plugin *
loader_open(const char *path, const char *name, char **err)
{
	loaded_plugin *p;
	lt_dlhandle h;
	void *sym = NULL;
	char *ltx, *modname;
	const syncd_plugin *(*entry)(void);

	for (size_t i = 0; i < loader_ncache; i++)
		if (strcmp(loader_cache[i]->path, path) == 0)
			return loader_cache[i];

	h = lt_dlopenadvise(path, loader_advise);
	if (!h) {
		const char *e = lt_dlerror();
		*err = xasprintf("%s: refused: not a loadable module: %s", path,
		                 e ? e : "unknown error");
		return NULL;
	}
	/* libtool may have renamed the symbol to <module>_LTX_<symbol> */
	modname = loader_basename(path);
	for (char *c = modname; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9')))
			*c = '_';
	ltx = xasprintf("%s_LTX_%s", modname, SYNCD_ENTRY_SYMBOL);
	sym = lt_dlsym(h, ltx);
	if (!sym)
		sym = lt_dlsym(h, SYNCD_ENTRY_SYMBOL);
	free(ltx);
	free(modname);
	if (!sym) {
		*err = xasprintf(
		    "%s: refused: not a syncd plugin (it exports no %s "
		    "function)",
		    path, SYNCD_ENTRY_SYMBOL);
		lt_dlclose(h);
		return NULL;
	}

	p = xcalloc(1, sizeof *p);
	p->path = xstrdup(path);
	p->handle = h;
	*(void **) &entry = sym;
	*err = loader_check(p, entry());
	if (*err) {
		free(p->path);
		free(p->options);
		free(p);
		lt_dlclose(h);
		return NULL;
	}
	p->name = xstrdup(name ? name : p->d.name);
	loader_cache = xrealloc(loader_cache, (loader_ncache + 1) * sizeof p);
	loader_cache[loader_ncache++] = p;
	return p;
}

static bool
loader_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name.la or dir/name.so, whichever exists first. */
static char *
loader_find_in(const char *dir, const char *name)
{
	static const char *const exts[] = {".la", ".so"};

	for (size_t e = 0; e < 2; e++) {
		char *path = xasprintf("%s/%s%s", dir, name, exts[e]);
		if (loader_exists(path))
			return path;
		free(path);
	}
	return NULL;
}

const loaded_plugin *
loader_load(const char *name, char **err)
{
	*err = NULL;
	if (!loader_valid_name(name)) {
		*err = xasprintf(
		    "plugin name \"%s\" is not valid: plugin names are "
		    "made of a-z, 0-9 and _",
		    name);
		return NULL;
	}
	for (size_t i = 0; i < loader_ncache; i++)
		if (strcmp(loader_cache[i]->name, name) == 0)
			return loader_cache[i];
	for (size_t i = 0; i < loader_ndirs; i++) {
		char *path = loader_find_in(loader_dirs[i], name);
		if (path) {
			const loaded_plugin *p = loader_open(path, name, err);
			free(path);
			return p;
		}
	}
	{
		char *dirs = loader_search_path();
		for (char *c = dirs; *c; c++)
			if (*c == '\n')
				*c = c[1] ? ':' : '\0';
		*err = xasprintf(
		    "plugin %s not found in %s; see syncd --list-plugins, "
		    "or set --plugin-dir or SYNCD_PLUGIN_PATH",
		    name, dirs);
		free(dirs);
	}
	return NULL;
}

static int
loader_cmp_name(const void *a, const void *b)
{
	const loaded_plugin *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

size_t
loader_list(const loaded_plugin ***out, strbuf *problems)
{
	const loaded_plugin **list = NULL;
	size_t n = 0;
	char **seen = NULL;
	size_t nseen = 0;

	for (size_t i = 0; i < loader_ndirs; i++) {
		DIR *d = opendir(loader_dirs[i]);
		struct dirent *de;

		if (!d)
			continue;
		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);
			char *name, *err = NULL;
			bool dup = false;
			const loaded_plugin *p;

			if (len < 4 ||
			    (strcmp(de->d_name + len - 3, ".la") != 0 &&
			     strcmp(de->d_name + len - 3, ".so") != 0))
				continue;
			name = xstrndup(de->d_name, len - 3);
			for (size_t k = 0; k < nseen; k++)
				if (strcmp(seen[k], name) == 0)
					dup = true;
			if (dup) {
				free(name);
				continue;
			}
			seen = xrealloc(seen, (nseen + 1) * sizeof(char *));
			seen[nseen++] = name;
			{
				char *path =
				    loader_find_in(loader_dirs[i], name);
				p = path ? loader_open(path, name, &err) : NULL;
				free(path);
			}
			if (!p) {
				if (err)
					sb_printf(problems, "%s\n", err);
				free(err);
				continue;
			}
			list = xrealloc(list, (n + 1) * sizeof *list);
			list[n++] = p;
		}
		closedir(d);
	}
	for (size_t k = 0; k < nseen; k++)
		free(seen[k]);
	free(seen);
	if (n)
		qsort(list, n, sizeof *list, loader_cmp_name);
	*out = list;
	return n;
}
