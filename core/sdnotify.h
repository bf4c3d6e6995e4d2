/*
 * core/sdnotify.h - telling systemd how the job is doing (sd_notify(3)),
 * for syncd@.service's Type=notify:
 *
 *  - READY=1 once the job copies or streams (the state /healthz answers
 *    200 for), with STATUS= naming each state it goes through;
 *  - EXTEND_TIMEOUT_USEC= every second until then: pre-checks and slot
 *    creation may wait long on the source's transactions, and a live
 *    start is not cut by TimeoutStartSec;
 *  - WATCHDOG=1 every second when the unit asks for it (WatchdogSec=);
 *  - STOPPING=1 when the job stops (SIGTERM, or its end).
 *
 * Built with libsystemd (HAVE_LIBSYSTEMD); without it, or outside systemd
 * (no $NOTIFY_SOCKET), nothing is sent. Used by the monitor's thread
 * (sdn_tick), and by monitor_stop once that thread has ended (sdn_stop).
 */
#ifndef SYNCD_SDNOTIFY_H
#define SYNCD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"

typedef struct sdn {
	bool on;        /* $NOTIFY_SOCKET set and libsystemd built in */
	bool ready;     /* READY=1 sent */
	bool stopping;  /* STOPPING=1 sent */
	bool watchdog;  /* the unit has WatchdogSec= */
	job_state last; /* the state STATUS= last named */
} sdn;

/* Reads the environment, and says the job is starting (STATUS=, and
 * EXTEND_TIMEOUT_USEC=). */
void sdn_init(sdn *s);
/* Once a second: the job's state now. */
void sdn_tick(sdn *s, job_state state);
/* The job has stopped (or failed): STOPPING=1 unless sent already. */
void sdn_stop(sdn *s);

#endif
