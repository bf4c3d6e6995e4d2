/*
 * dws_copy - sink: COPY into a per-session staging table, then a few
 * set-based statements from it into the target, in the batch's transaction
 * (write_mode = copy). The code is shared with dws_upsert (see dws.h).
 */
#include "dws.h"

static syncd_status
dws_copy_create(const syncd_host *host, void **state)
{
	return dws_create(host, state, DWS_MODE_COPY);
}

static const syncd_sink_ops dws_copy_ops = {
    .size = sizeof(syncd_sink_ops),
    .create = dws_copy_create,
    .destroy = dws_destroy,
    .check = dws_check,
    .open = dws_open,
    .close = dws_close,
    .applied_lsn = dws_applied_lsn,
    .write = dws_write,
    .prepare_table = dws_prepare_table,
    .copy_open = dws_full_open,
    .copy_close = dws_full_close,
    .copy_table = dws_full_table,
    .copy_begin = dws_full_begin,
    .copy_data = dws_full_data,
    .copy_end = dws_full_end,
    .origin_get = dws_origin_get,
    .origin_set = dws_origin_set,
    .forget = dws_forget,
    .retire = dws_retire,
    .marks = dws_marks,
    .rewind = dws_rewind,
    .digest = dws_digest,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_SINK, .name = "dws_copy", .version = "1.0",
             .description =
                 "GaussDB(DWS) / PostgreSQL: COPY into staging, then "
                 "set-based merge (write_mode = copy)",
             .options = dws_options, .options_size = sizeof(dws_opts),
             .ops.sink = &dws_copy_ops);
