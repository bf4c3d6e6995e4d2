/*
 * bad - broken plugins for the loader's refusal tests, one per -D switch
 * (see Makefile.am). Each is a complete sink but for one defect; none of
 * their operations may ever be called.
 */
#include <stdlib.h>

#include <syncd/syncd.h>

static syncd_status
bad_create(const syncd_host *host, void **state)
{
	(void) host;
	(void) state;
	abort(); /* the loader must refuse before calling anything */
}

static void
bad_destroy(void *state)
{
	(void) state;
	abort();
}

static syncd_status
bad_open(void *state, int worker, void **wstate)
{
	(void) state;
	(void) worker;
	(void) wstate;
	abort();
}

static void
bad_close(void *wstate)
{
	(void) wstate;
	abort();
}

static __attribute__((unused)) syncd_status
bad_write(void *wstate, const syncd_batch *b)
{
	(void) wstate;
	(void) b;
	abort();
}

static const syncd_sink_ops bad_ops __attribute__((unused)) = {
#ifdef BAD_OPS_SIZE
    /* smaller than the 1.0 size: a table no 1.0 plugin can have */
    .size = SYNCD_SINK_OPS_SIZE_1_0 - sizeof(void *),
#else
    .size = sizeof(syncd_sink_ops),
#endif
    .create = bad_create,
    .destroy = bad_destroy,
    .open = bad_open,
    .close = bad_close,
#ifndef BAD_MISSING_OP
    .write = bad_write,
#endif
};

typedef struct bad_opts {
	const char *mode;
} bad_opts;

static const syncd_option bad_options[] __attribute__((unused)) = {
#ifdef BAD_OPTIONS
    {.name = "mode",
     .type = SYNCD_OPT_ENUM,
     .default_value = "a",
     .help = "an enum without choices",
     SYNCD_OPT_FIELD(bad_opts, mode)},
#endif
    {.name = NULL}};

#ifndef BAD_NO_ENTRY
SYNCD_EXPORT const syncd_plugin *syncd_plugin_entry(void);
SYNCD_EXPORT const syncd_plugin *
syncd_plugin_entry(void)
{
	static const syncd_plugin d = {
#ifdef BAD_MAGIC
	    .magic = 0xdeadbeef,
#else
	    .magic = SYNCD_ABI_MAGIC,
#endif
#ifdef BAD_ABI_MAJOR
	    .abi_major = SYNCD_ABI_MAJOR + 1,
#else
	    .abi_major = SYNCD_ABI_MAJOR,
#endif
#ifdef BAD_ABI_MINOR
	    .abi_minor = SYNCD_ABI_MINOR + 1,
#else
	    .abi_minor = SYNCD_ABI_MINOR,
#endif
	    .size = sizeof(syncd_plugin),
	    .option_size = sizeof(syncd_option),
	    .kind = SYNCD_KIND_SINK,
	    .name = BAD_NAME,
	    .version = "0",
	    .options = bad_options,
	    .options_size = sizeof(bad_opts),
	    .ops.sink = &bad_ops,
	};
	return &d;
}
#else
SYNCD_EXPORT int bad_not_a_plugin(void);
SYNCD_EXPORT int
bad_not_a_plugin(void)
{
	return 42;
}
#endif
