/*
 * core/sdnotify.c - systemd's notification protocol (see sdnotify.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sdnotify.h"

/* What one EXTEND_TIMEOUT_USEC= grants: the ticks come every second. */
#define SDN_EXTEND_USEC 30000000ULL

static void
sdn_send(sdn *s, const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	int rc = sd_notify(0, msg);
	if (rc < 0 && s->on) {
		/* the socket went away: say it once, then stay quiet */
		log_warning("[monitor] could not notify systemd (%s): %s",
		            getenv("NOTIFY_SOCKET"), msg);
		s->on = false;
	}
#else
	(void) s;
	(void) msg;
#endif
}

void
sdn_init(sdn *s)
{
	const char *sock = getenv("NOTIFY_SOCKET");

	*s = (sdn){.last = JOB_NSTATES};
#ifdef HAVE_LIBSYSTEMD
	s->on = sock && *sock;
	if (s->on) {
		uint64_t usec = 0;
		s->watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
	}
#else
	(void) sock;
#endif
	/* the job is starting: from now on, alive is enough */
	sdn_tick(s, JOB_STARTING);
}

void
sdn_tick(sdn *s, job_state state)
{
	char msg[64];

	if (!s->on)
		return;
	if (state != s->last) {
		bool ready = !s->ready &&
		             (state == JOB_COPYING || state == JOB_STREAMING);
		snprintf(msg, sizeof msg, "%sSTATUS=%s",
		         ready ? "READY=1\n" : "", job_state_name(state));
		sdn_send(s, msg);
		s->ready = s->ready || ready;
		s->last = state;
	}
	/* stopping for good (a failure may be followed by auto_retry) */
	if (state == JOB_STOPPING) {
		sdn_stop(s);
		return;
	}
	if (!s->ready) {
		snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu",
		         (unsigned long long) SDN_EXTEND_USEC);
		sdn_send(s, msg);
	}
	/* systemd watches from READY=1 on */
	if (s->watchdog && s->ready)
		sdn_send(s, "WATCHDOG=1");
}

void
sdn_stop(sdn *s)
{
	if (!s->on || s->stopping)
		return;
	sdn_send(s, "STOPPING=1");
	s->stopping = true;
}
