/*
 * plugins/pgoutput/pgo.h - the pgoutput source's own types and the
 * functions its files share (see pgoutput.c for how it works).
 */

#ifndef PGO_PGO_H
#define PGO_PGO_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <syncd/syncd.h>

#include "proto.h"
#include "txbuf.h"

#define PGO_HEARTBEAT_PREFIX "syncd_heartbeat"
#define PGO_MAX_DBS          64

typedef struct pgo_col {
	char *name;
	uint32_t typid;
	int32_t typmod;
	char *type_name; /* format_type(atttypid, atttypmod) */
	char *base_type; /* enum: text; domain: its base type; else NULL */
	char *comment;
	char *def; /* its default when a plain constant ('x'::text, 0), or
	              NULL (see pgo_plain_default) */
	bool key, notnull;
	uint32_t keypos; /* place in the primary key from 1; 0: not a key */
} pgo_col;

/* Every leaf of a root got a new file node between two partition watches,
 * the first of which read with snapshot snap: the stream must carry, by
 * until (the WAL position the second read), a TRUNCATE of the root that
 * snap did not see; else the leaves (names) were truncated one by one. */
typedef struct pgo_pend {
	pgo_snap snap;
	uint64_t until;
	char *names;
} pgo_pend;

typedef struct pgo_table {
	uint32_t oid;
	char *schema, *name;
	char *qname; /* quote_ident(schema).quote_ident(name), for fixes */
	char replident;
	size_t ncols;
	pgo_col *cols;
	bool has_pk;
	bool partition;    /* relispartition */
	bool root;         /* a partitioned table synced as one (partitions =
	                      root): its leaf partitions are copied into it */
	uint32_t nparts;   /* root: its leaf partitions when selected */
	uint32_t root_oid; /* partition (leaf mode): its partitioned root */
	char **chunk_from; /* root, full phase: the leaf of each chunk */
	uint32_t nchunk_from;
	uint32_t trunc_xid; /* root: the last TRUNCATE of it in the stream */
	/* root: each time every leaf got a new file node between two
	 * partition watches, one check (see pgo_watch_partitions) */
	struct pgo_pend *pend;
	size_t npend;
	bool owned; /* the role has its owner's rights */
	char *owner;
	bool recopy; /* root: to be copied again (a partition attached with
	                rows), reported by new_tables() */
	char *pk; /* the primary key's columns when the job started: "a, b" */
	char **keys; /* the same, one name each, in key order */
	size_t nkeys;
	/* carried, gone from the selection in the catalog (dropped, renamed,
	 * made unsyncable): carried until the stream passes this position,
	 * which is past the change (see pgo_leave_mark) */
	uint64_t leave_lsn;
} pgo_table;

/* The current shape of a relation, as the stream last described it. */
typedef struct pgo_rel {
	uint32_t relid;
	bool selected;
	bool announce; /* selected since its Relation message: described to
	                  the core before its next change */
	syncd_relation rel;
	syncd_column *cols;
	syncd_value *oldv, *newv; /* scratch for one change */
} pgo_rel;

typedef struct pgo pgo;

typedef struct pgo_sample {
	uint64_t lsn;
	int64_t at_ms;
} pgo_sample;

typedef struct pgo_db {
	pgo *src;
	uint32_t index; /* where it is in s->dbs */
	/* the stream number: the slot's (the shard scenario), else index */
	uint32_t stream;
	char *dbname;
	char *host; /* as connected (the stream's server) */
	char *slot;
	char holder[96]; /* "replication slot NAME", for the core's messages */
	/* syncd_position.origin: "system ID, timeline N" (IDENTIFY_SYSTEM) */
	char origin[96];
	/* why the slot can no longer stream (syncd_position.lost), or "" */
	char lost[512];
	bool dropped; /* drop() removed the slot: open() creates it, even a
	                 custom.slot.name */
	PGconn *sql, *repl;
	pthread_mutex_t lock; /* repl: the reader and the status thread */
	int version;          /* server_version_num */
	int proto;
	char *snapshot; /* exported by a slot created with its snapshot */
	pgo_table *tables;
	size_t ntables;
	bool named;    /* the tables syncd skips or refuses were logged */
	bool via_root; /* partitions = root on this server */
	struct pgo_leaf *leaves; /* the partitions of synced roots, as last
	                            seen while streaming */
	size_t nleaves;
	bool leaves_read;
	int64_t last_leaves_ms;
	/* the links checked before (links.c): not read yet (0), none (1),
	 * read (2); what was last written */
	struct pgo_known *known;
	size_t nknown;
	int known_state;
	char *links_saved;
	pgo_snap watch_snap; /* the snapshot the last watch read with */
	pgo_rel **rels;        /* open addressing by relid */
	size_t relcap, nrels;
	char **typnames; /* Type messages: "oid\tname" */
	size_t ntypnames;
	txbuf *tx;
	pgo_decoder dec, replay;
	/* transaction being received */
	bool in_txn;
	uint64_t txn_lsn;
	int64_t txn_time;
	uint32_t txn_xid;
	uint32_t stream_xid; /* top-level xid of the current stream block */
	bool spilling;       /* logged that spill files are in use */
	/* progress */
	uint64_t slot_confirmed; /* the slot's position when opened */
	uint64_t received;
	uint64_t sent_flush;
	uint64_t flushed; /* confirm(): durable up to this commit LSN */
	uint64_t emitted; /* the commit LSN of the last transaction emitted */
	atomic_bool busy; /* a transaction or a message is being received */
	/* the received position confirmed while nothing was pending (see
	 * pgo_confirmable), and the last commit confirmed then: the slot's
	 * position may be past the destination's progress by that much */
	uint64_t recv_sent, recv_commit;
	bool recv_loaded;
	/* the hold slot (slot.flush.delay.time > 0): keeps the WAL of the
	 * delay while the slot itself is confirmed promptly */
	char *hold;
	uint64_t hold_lsn; /* its confirmed position */
	int64_t last_hold_ms;
	int64_t last_stats_ms; /* the figures of pgo_stats */
	uint64_t server_wal;   /* the server's end of WAL, as last seen */
	int64_t last_status_ms;
	int64_t last_heartbeat_ms;
	/* the SQL session (sql) while it is lost: since when, the next
	 * attempt to reopen it, the attempts so far (see pgo_sql_back) */
	int64_t sql_lost_ms, sql_next_ms;
	int sql_attempts;
	char sql_err[512];   /* why it was lost, or the last attempt failed */
	pgo_sample *samples; /* commits seen, one per second, for the delay */
	size_t nsamples, capsamples;
	/* while read() runs: where events go, and the first refusal */
	syncd_emit_fn emit;
	void *emit_ctx;
	syncd_status emit_st;
	/* the full phase's snapshot, held from snapshot() to release() */
	syncd_copy_table *ct;
	size_t nct;
	PGconn *tconn;        /* the temporary slot's connection */
	PGconn *dconn;        /* digest(): syncd --verify's connection */
	PGresult *tmp;        /* its CREATE_REPLICATION_SLOT result */
	PGresult *export_res; /* pg_export_snapshot() */
	bool snap_txn;        /* sql holds the snapshot's transaction */
	/* tables copied while streaming (live.c): the selection as last
	 * read (new_tables), the tables of an unselected name warned about,
	 * the snapshot of snapshot_tables() and its temporary slot */
	bool rescanning;
	pgo_table *fresh;
	size_t nfresh;
	/* while rescanning: the carried tables; the carried ones that lost
	 * their key or identity, which the stream decides about */
	pgo_table *carried;
	size_t ncarried;
	uint32_t *kept;
	size_t nkept;
	char **warned;
	size_t nwarned;
	char *catalog_fp; /* see pgo_catalog_moved */
	int64_t last_rescan_ms;
	syncd_copy_table *lct;
	size_t nlct;
	PGconn *ltconn;
	PGresult *ltmp;
	/* streaming: START_REPLICATION done, the status thread */
	bool streaming;
	pthread_t status_thread;
	bool status_started;
	atomic_bool done;
	char err[2048];
	char sqlstate[6];
} pgo_db;

struct pgo {
	const syncd_host *host;
	const char *conninfo, *publication, *custom_slot;
	bool autocreate;
	int64_t delay_ms, heartbeat_ms, status_ms, spill;
	size_t npatterns;
	const char *const *patterns;
	size_t ndbs;
	pgo_db *dbs;     /* in stream order; in the shard scenario the slots'
	                    numbers may skip */
	bool sharded;    /* [logical_table.*]: databases found on the server */
	bool discovered; /* ... and found */
	bool nothing;    /* ... and none matches (not worth retrying) */
	bool checking;   /* syncd --check: report, change nothing */
	bool copy;       /* mode full or full+incremental */
	bool stream;     /* mode incremental or full+incremental */
	int64_t chunk_size;
	const char *partitions; /* "root", "leaf", NULL: by server version */
	char app_name[80];      /* see pgo_app_name */
};

/* A leaf partition of a synced partitioned table, while streaming. */
typedef struct pgo_leaf {
	uint32_t oid, root;
	char *name;     /* schema.name */
	char *filenode; /* its relfilenode when last seen */
	char *link;     /* xmin of its newest pg_inherits link, checked */
	bool seen;
} pgo_leaf;

/* A partition link checked by an earlier run (links.c). */
typedef struct pgo_known {
	uint32_t root, leaf;
	char link[16];
} pgo_known;

typedef struct pgo_sb {
	char *data;
	size_t len, cap;
} pgo_sb;

/* conn.c */
int64_t pgo_now_ms(void);
int64_t pgo_now_pg(void);
bool pgo_fail(pgo_db *db, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *pgo_sqlstate(const PGresult *res);
const char *pgo_app_name(pgo *s);
bool pgo_transient(const char *sqlstate);
bool pgo_slot_gone(pgo_db *db);
const char *pgo_failure_state(PGconn *c, const PGresult *res);
PGconn *pgo_connect(pgo_db *db, bool replication);
/* Routes the server's notices of c to the host's log. */
void pgo_notices(pgo *s, PGconn *c);
PGconn *pgo_connect_within(pgo_db *db, bool replication, const char *timeout);
PGresult *pgo_query(pgo_db *db, PGconn *c, const char *what, const char *sql,
                    int nparams, const char *const *params);
char *pgo_ident(PGconn *c, const char *name);
void pgo_sb_printf(pgo_sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t pgo_parse_lsn(const char *s);
bool pgo_identify(pgo_db *db);
bool pgo_server_checks(pgo_db *db, bool *problems);
void pgo_close(pgo_db *db);

/* catalog.c */
void pgo_free_cols(pgo_table *t);
void pgo_free_table(pgo_table *t);
void pgo_free_tables(pgo_db *db);
bool pgo_warn_once(pgo_db *db, const char *schema, const char *name);
bool pgo_plain_default(const char *e);
bool pgo_load_columns(pgo_db *db, const char *oids, bool *problems);
bool pgo_select_tables(pgo_db *db, bool *problems);
pgo_table *pgo_table_by_oid(pgo_db *db, uint32_t oid);
void pgo_table_left(pgo_db *db, size_t at);
bool pgo_matches(pgo *s, const char *database, const char *schema,
                 const char *table);
void pgo_leave_passed(pgo_db *db, uint64_t at);
void pgo_free_leaves(pgo_db *db);
/* links.c */
bool pgo_write_file(const char *path, const char *data);
void pgo_forget_slot_notes(pgo_db *db);
/* 1: root/leaf was checked with this link before; 0: not; -1: unknown */
int pgo_link_known(pgo_db *db, uint32_t root, uint32_t leaf,
                   const char *link);
void pgo_links_save(pgo_db *db);
bool pgo_watch_partitions(pgo_db *db);
bool pgo_check_dbname(pgo_db *db, bool *problems);
char *pgo_default_dbname(const pgo *s);
void pgo_db_init(pgo *s, pgo_db *db, uint32_t index, uint32_t stream,
                 char *dbname);
bool pgo_discover(pgo *s);
syncd_status pgo_list_tables(void *state, syncd_relation_fn fn, void *ctx);

/* publication.c */
bool pgo_publication(pgo_db *db, bool apply, bool *problems);

/* slot.c */
char *pgo_slot_name(pgo *s, uint32_t stream, const char *dbname);
bool pgo_slot(pgo_db *db, bool apply, bool *problems, uint64_t *confirmed,
              bool *created);
char *pgo_slot_prefix(pgo *s);
char *pgo_hold_name(const char *slot);
bool pgo_hold_open(pgo_db *db);
bool pgo_slot_lost(pgo_db *db, PGconn *c);
syncd_status pgo_drop(void *state, uint32_t stream);
syncd_status pgo_digest(void *state, const syncd_digest_request *req,
                        syncd_digest_fn fn, void *ctx);
syncd_status pgo_rewind(void *state, uint32_t stream, syncd_lsn lsn,
                        bool apply, syncd_lsn *oldest);
syncd_status pgo_retire(void *state, uint32_t stream, bool apply,
                        syncd_say_fn say, void *ctx);

/* decode.c */
void pgo_rel_free(pgo_rel *r);
pgo_rel *pgo_rel_find(pgo_db *db, uint32_t relid);
void pgo_rel_adopt(pgo_db *db, pgo_rel *r, const pgo_table *t);

/* live.c */
syncd_status pgo_new_tables(void *state, uint32_t stream,
                            syncd_relation_fn fn, void *ctx);
syncd_status pgo_snapshot_tables(void *state, uint32_t stream,
                                 const syncd_relation *const *tables,
                                 size_t n, syncd_snapshot *snap);
void pgo_release_tables(void *state, uint32_t stream);
void pgo_release_live(pgo_db *db);
void pgo_free_live(pgo_db *db);
bool pgo_handle(pgo_db *db, const char *data, size_t len, bool replay);

/* stream.c */
void pgo_remember_commit(pgo_db *db, uint64_t lsn);
uint64_t pgo_received(pgo_db *db);
uint64_t pgo_reported(pgo_db *db, uint64_t confirmed);
void pgo_end_stream(pgo_db *db);
syncd_status pgo_start(void *state, uint32_t stream, syncd_lsn after);
syncd_status pgo_read(void *state, uint32_t stream, int timeout_ms,
                      syncd_emit_fn emit, void *emit_ctx);
void pgo_confirm(void *state, uint32_t stream, syncd_lsn lsn);
void pgo_close_stream(void *state, uint32_t stream);

/* snapshot.c */
void pgo_release_snapshot(pgo_db *db);
void pgo_free_copy_tables(syncd_copy_table *ct, size_t n);
syncd_relation *pgo_table_relation(pgo_db *db, const pgo_table *t);
/* A temporary slot "syncd_KIND_PID_STREAM" with its exported snapshot, on
 * a new replication connection *conn (the slot lives while it is open);
 * why: for the error. */
bool pgo_temp_slot(pgo_db *db, const char *kind, const char *why,
                   PGconn **conn, PGresult **res);
/* The xmin of the snapshot of c's transaction (SELECT, one row). */
PGresult *pgo_snapshot_xmin(pgo_db *db, PGconn *c);
bool pgo_copy_tables(pgo_db *db, PGconn *conn, pgo_table *const *tables,
                     size_t ntables, const char *xmin,
                     syncd_copy_table **out);
syncd_status pgo_copy_open(void *state, uint32_t stream, const char *snapshot,
                           void **reader);
void pgo_copy_close(void *reader);
syncd_status pgo_copy_read(void *reader, const syncd_copy_table *t,
                           uint32_t chunk, const char *changed_since,
                           syncd_copy_fn fn, void *ctx);
syncd_status pgo_snapshot(void *state, uint32_t stream, syncd_snapshot *snap);
void pgo_release(void *state, uint32_t stream);

/* pgoutput.c */
bool pgo_prepare(pgo_db *db, bool apply, bool *problems,
                 uint64_t *slot_confirmed, bool *slot_created);
syncd_status pgo_report(pgo_db *db, syncd_status st);
syncd_status pgo_prepare_failed(pgo_db *db, bool problems);
syncd_status pgo_find_dbs(pgo *s);
/* The database of stream number `stream`, or NULL. */
pgo_db *pgo_db_find(pgo *s, uint32_t stream);
pgo_db *pgo_db_of(pgo *s, uint32_t stream);

#endif
