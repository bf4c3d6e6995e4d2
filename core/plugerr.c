/*
 * core/plugerr.c - see plugerr.h.
 */
#include "config.h"

#include "plugerr.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static __thread struct {
	const void *who;
	char *msg;
	char sqlstate[6];
} plugerr;

/* Threads a plugin starts (a source's readers) never call plugerr_clear():
 * a thread-exit destructor frees their message. */
static pthread_key_t plugerr_key;
static pthread_once_t plugerr_once = PTHREAD_ONCE_INIT;

static void
plugerr_exit(void *unused)
{
	(void) unused;
	free(plugerr.msg);
	plugerr.msg = NULL;
}

static void
plugerr_init(void)
{
	pthread_key_create(&plugerr_key, plugerr_exit);
}

void
plugerr_set(const void *who, const char *sqlstate, const char *fmt, va_list ap)
{
	pthread_once(&plugerr_once, plugerr_init);
	pthread_setspecific(plugerr_key, &plugerr);
	free(plugerr.msg);
	plugerr.msg = xvasprintf(fmt, ap);
	plugerr.who = who;
	memset(plugerr.sqlstate, 0, sizeof plugerr.sqlstate);
	if (sqlstate)
		strncpy(plugerr.sqlstate, sqlstate,
		        sizeof plugerr.sqlstate - 1);
}

const char *
plugerr_msg(const void *who)
{
	return plugerr.who == who && plugerr.msg
	           ? plugerr.msg
	           : "failed without giving a reason (a bug in the plugin)";
}

const char *
plugerr_sqlstate(const void *who)
{
	return plugerr.who == who && plugerr.sqlstate[0] ? plugerr.sqlstate
	                                                 : NULL;
}

void
plugerr_clear(void)
{
	free(plugerr.msg);
	memset(&plugerr, 0, sizeof plugerr);
}
