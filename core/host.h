/*
 * core/host.h - the host table each plugin instance gets (syncd/host.h):
 * adapters from the plugins' services to the core's parts (log, per-thread
 * errors, metrics, routing, dirty data).
 */
#ifndef SYNCD_HOST_CORE_H
#define SYNCD_HOST_CORE_H

#include "job.h"

/* Fills inst->host (and the kind's table) for inst->job. */
void host_init(instance *inst);

#endif
