/*
 * core/coreopts.h - the keys syncd itself reads: [job], [dirty], and its
 * keys in [source], [sink], [transform.NAME] and [archiver] beside the
 * plugin's own.
 */
#ifndef SYNCD_COREOPTS_H
#define SYNCD_COREOPTS_H

#include <syncd/option.h>

extern const syncd_option job_core_options[];
extern const syncd_option job_sink_core_options[];
extern const syncd_option job_dirty_options[];
extern const syncd_option job_source_core[];
extern const syncd_option job_transform_core[];
extern const syncd_option job_archiver_core[];

#endif
