/*
 * core/loader.h - finding, loading and checking plugins. The only part of
 * syncd that talks to libltdl. Call loader_init() at start-up, before any
 * thread is started.
 */
#ifndef SYNCD_LOADER_H
#define SYNCD_LOADER_H

#include <syncd/plugin.h>

#include "util.h"

typedef struct loaded_plugin {
	char *name;
	char *path;     /* the file that was opened */
	void *handle;   /* lt_dlhandle */
	syncd_plugin d; /* the descriptor, core-sized, tail zero-filled */
	union {
		syncd_source_ops source;
		syncd_transform_ops transform;
		syncd_sink_ops sink;
		syncd_archiver_ops archiver;
	} ops; /* the kind's operations, core-sized, missing ones NULL */
	syncd_option *options; /* the option table, core-sized entries */
} loaded_plugin;

/* Search order: plugin_dir (may be NULL), each directory of
 * $SYNCD_PLUGIN_PATH (colon-separated), the installed plugin directory. */
void loader_init(const char *plugin_dir);
void loader_shutdown(void);

/* Loads plugin `name` (cached). NULL with *err set (caller frees). */
const loaded_plugin *loader_load(const char *name, char **err);

/* Every plugin found in the search path, first one of each name wins.
 * Files that fail to load are reported in problems, one line each. Returns
 * the count; *out is an array the caller frees (not its elements). */
size_t loader_list(const loaded_plugin ***out, strbuf *problems);

const char *loader_kind_name(syncd_plugin_kind kind);
/* The directories searched, one per line. */
char *loader_search_path(void);

#endif
