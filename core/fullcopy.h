/*
 * core/fullcopy.h - the full phase (host->copy): tables copied from one
 * snapshot by parallel source readers into sink copy sessions, with
 * progress and per-table completion kept by the sink.
 */
#ifndef SYNCD_FULLCOPY_H
#define SYNCD_FULLCOPY_H

#include <syncd/plugin.h>

#include "job.h"

/* False, with *who the instance's prefix, when the source or the sink
 * lacks the full-phase operations. */
bool fullcopy_supported(const job *j, const char **who);

/* host->copy: see syncd/host.h. */
syncd_status fullcopy_run(job *j, uint32_t stream, const char *snapshot,
                          bool again, const syncd_copy_table *tables,
                          size_t ntables);

#endif
