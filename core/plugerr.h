/*
 * core/plugerr.h - why the last call into a plugin failed, per thread: the
 * thread that made a failing call reads the reason right after, and the
 * workers of one sink instance never see (or free) each other's messages.
 */
#ifndef SYNCD_PLUGERR_H
#define SYNCD_PLUGERR_H

#include <stdarg.h>

/* Records the reason (what a plugin passes to host->set_error) for the
 * instance `who` (any pointer naming it). */
void plugerr_set(const void *who, const char *sqlstate, const char *fmt,
                 va_list ap);
/* The reason `who` gave on this thread, or a message saying it gave none. */
const char *plugerr_msg(const void *who);
/* Its SQLSTATE, or NULL. */
const char *plugerr_sqlstate(const void *who);
/* Frees this thread's reason; every thread of the core calls it before it
 * ends (threads a plugin starts are cleaned at their exit). */
void plugerr_clear(void);

#endif
