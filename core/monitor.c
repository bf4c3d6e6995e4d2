/*
 * core/monitor.c - see monitor.h.
 */
#include "config.h"

#include "instance.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "plugerr.h"
#include "sdnotify.h"
#include "util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <syncd/abi.h>

extern char **environ;

#define MON_TICK_MS        1000
#define MON_RATE_WINDOW    10   /* ticks: changes/s in /status */
#define MON_CMD_TIMEOUT_MS 60000 /* or alarm.interval, if shorter */
#define MON_CMD_KILL_MS    5000
#define MON_CMD_WAIT_MS    2000 /* at the end, for a command just run */

const syncd_option monitor_options[] = {
    {"metrics.listen", SYNCD_OPT_STRING, "",
     "HOST:PORT of the HTTP endpoint (/metrics, /status, /healthz); empty: "
     "none. A HOST left out (\":9187\") is 127.0.0.1; port 0 picks a free "
     "one (written to STATE_DIR/monitor.url)",
     0, 0, 0, NULL, NULL, 0, 0},
    {"alarm.lag", SYNCD_OPT_DURATION, NULL,
     "fire when the lag (age of the oldest transaction read and not yet "
     "applied) exceeds this; unset: no rule (a bare number is seconds)",
     0, 1000, 86400000LL * 30, NULL, "s", 0, 0},
    {"alarm.dirty_rows", SYNCD_OPT_INT, NULL,
     "fire when at least this many rows were refused by the destination "
     "within the last alarm.interval; unset: no rule",
     0, 1, 1000000000LL, NULL, NULL, 0, 0},
    {"alarm.retained_wal", SYNCD_OPT_SIZE, NULL,
     "fire when a replication slot of the job keeps more WAL than this on "
     "the source; unset: no rule (a bare number is MB)",
     0, 1048576, 0x7fffffffffffffffLL, NULL, "MB", 0, 0},
    {"alarm.interval", SYNCD_OPT_DURATION, "5m",
     "at most one run of alarm.command per rule in this time; also the "
     "window of alarm.dirty_rows",
     0, 1000, 86400000LL, NULL, "s", 0, 0},
    {"alarm.command", SYNCD_OPT_STRING, "",
     "program run (no shell; words split on blanks) when a rule fires and "
     "when it clears, with SYNCD_ALARM, SYNCD_ALARM_STATE, SYNCD_ALARM_VALUE, "
     "SYNCD_ALARM_THRESHOLD, SYNCD_ALARM_MESSAGE and SYNCD_JOB in its "
     "environment; empty: the log only",
     0, 0, 0, NULL, NULL, 0, 0},
    {"log.interval", SYNCD_OPT_DURATION, "60s",
     "a status line in the log this often while the job streams; 0: none",
     0, 0, 86400000LL, NULL, "s", 0, 0},
    {NULL, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0, 0}};

/* ---- the listen address ----------------------------------------------------
 */

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into host and port; false with a
 * reason. */
static bool
mon_split_listen(const char *text, char **host, char **port, const char **why)
{
	const char *colon;

	*host = *port = NULL;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (!end || end[1] != ':') {
			*why = "write an IPv6 address as [ADDRESS]:PORT";
			return false;
		}
		*host = xstrndup(text + 1, (size_t) (end - text - 1));
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			*why = "write it as HOST:PORT, e.g. 127.0.0.1:9187";
			return false;
		}
		*host = colon == text ? xstrdup("127.0.0.1")
		                      : xstrndup(text, (size_t) (colon - text));
	}
	{
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || p < 0 || p > 65535) {
			*why = "the port is a number from 0 to 65535";
			free(*host);
			*host = NULL;
			return false;
		}
	}
	*port = xstrdup(colon + 1);
	return true;
}

static struct addrinfo *
mon_resolve(const char *host, const char *port, const char **why)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		*why = gai_strerror(rc);
		return NULL;
	}
	return res;
}

/* The alarm command's words: split on blanks, no shell. */
static char **
mon_words(const char *text, size_t *n)
{
	char **w = NULL;
	const char *p = text ? text : "";

	*n = 0;
	while (*p) {
		const char *start;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		w = xrealloc(w, (*n + 2) * sizeof *w);
		w[(*n)++] = xstrndup(start, (size_t) (p - start));
		w[*n] = NULL;
	}
	return w;
}

static void
mon_free_words(char **w)
{
	for (size_t i = 0; w && w[i]; i++)
		free(w[i]);
	free(w);
}

/* The program a command names, searched in PATH like execvp; NULL when
 * none is executable. */
static char *
mon_which(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
	copy = xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *d = strtok_r(copy, ":", &save); d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char *f = xasprintf("%s/%s", *d ? d : ".", prog);
		struct stat st;
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(f, X_OK) == 0)
			found = f;
		else
			free(f);
	}
	free(copy);
	return found;
}

void
monitor_check(job *j, const char *path, strbuf *errors)
{
	const opt_value *v = optset_get(&j->monitor_opts, "metrics.listen");
	const char *cmd = optset_str(&j->monitor_opts, "alarm.command");

	if (v && v->text && *v->text) {
		char *host, *port;
		const char *why = NULL;
		struct addrinfo *ai = NULL;
		if (mon_split_listen(v->text, &host, &port, &why))
			ai = mon_resolve(host, port, &why);
		if (!ai)
			sb_printf(errors,
			          "%s:%d: [monitor] metrics.listen = %s: %s\n",
			          path, v->line, v->text, why);
		if (ai)
			freeaddrinfo(ai);
		free(host);
		free(port);
	}
	if (cmd && *cmd) {
		size_t n;
		char **w = mon_words(cmd, &n);
		char *prog = n ? mon_which(w[0]) : NULL;
		const opt_value *c =
		    optset_get(&j->monitor_opts, "alarm.command");
		if (!prog)
			sb_printf(errors,
			          "%s:%d: [monitor] alarm.command: \"%s\" is "
			          "not an executable file%s; give its path (the "
			          "command runs without a shell)\n",
			          path, c ? c->line : 0, n ? w[0] : "",
			          n && !strchr(w[0], '/') ? " in PATH" : "");
		free(prog);
		mon_free_words(w);
	}
}

bool
monitor_precheck(job *j)
{
	const char *listen = optset_str(&j->monitor_opts, "metrics.listen");
	char *host = NULL, *port = NULL;
	const char *why = NULL;
	struct addrinfo *ai = NULL;
	bool ok = true;
	int fd, one = 1;

	if (!listen || !*listen)
		return true;
	if (mon_split_listen(listen, &host, &port, &why))
		ai = mon_resolve(host, port, &why);
	free(host);
	free(port);
	if (!ai) {
		log_error("[monitor] metrics.listen = %s: %s", listen, why);
		return false;
	}
	/* what the endpoint will do at start: bind, then let go */
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		log_error("[monitor] metrics.listen = %s: cannot listen there "
		          "(%s); choose a free port, or an address of this "
		          "host",
		          listen, strerror(errno));
		ok = false;
	} else
		log_info("[monitor] metrics.listen = %s: the address is free",
		         listen);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return ok;
}

/* ---- the monitor ---------------------------------------------------------
 */

typedef enum { RULE_LAG, RULE_DIRTY, RULE_WAL, NRULES } rule_id;

typedef struct alarm_rule {
	const char *name, *key, *unit;
	bool on;
	double threshold;
	bool firing;      /* what was last announced */
	int64_t last_run; /* ms, monotonic; 0: never */
	double value;
	pid_t pid; /* its command, while it runs */
	int out;   /* ... and the read end of its output */
	int64_t started, killed;
	strbuf pending; /* output not yet a whole line */
} alarm_rule;

struct monitor {
	job *j;
	struct MHD_Daemon *http;
	char *url, *url_file;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	int64_t started_wall; /* ms since the epoch */
	int64_t interval_ms, log_ms, last_log, cmd_timeout_ms;
	char **cmd;
	size_t ncmd;
	alarm_rule rules[NRULES];
	/* changes applied, one sample per tick: /status's rate and the
	 * status line's */
	double changes[MON_RATE_WINDOW + 1];
	size_t nchanges;
	double changes_at_log;
	/* dirty rows, one sample per tick, for the window of the rule */
	struct dirty_sample {
		int64_t ms;
		double total;
	} *dirty;
	size_t ndirty;
	pthread_mutex_t lock; /* rules' values and firing, for /status */
	sdn notify; /* systemd's Type=notify, from the thread */
};

/* Process figures, from /proc. */
static void
mon_collect_process(void *ctx)
{
	monitor *m = ctx;
	FILE *f = fopen("/proc/self/stat", "r");
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	job_state now = job_current_state(m->j);

	if (f) {
		char buf[1024];
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		char *p;
		buf[n] = '\0';
		fclose(f);
		/* after "(comm)": state is field 3; utime 14, stime 15, rss
		 * 24 */
		p = strrchr(buf, ')');
		if (p) {
			unsigned long long ut = 0, st = 0;
			long rss = 0;
			if (sscanf(p + 2,
			           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			           "%*u %llu %llu %*d %*d %*d %*d %*d %*d %*u "
			           "%*u %ld",
			           &ut, &st, &rss) == 3 &&
			    tick > 0) {
				metrics_set("process_cpu_seconds_total", NULL,
				            (double) (ut + st) / (double) tick);
				metrics_set("process_resident_memory_bytes",
				            NULL, (double) rss * (double) page);
			}
		}
	}
	{
		DIR *d = opendir("/proc/self/fd");
		double n = 0;
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)) != NULL)
				if (e->d_name[0] != '.')
					n++;
			closedir(d);
			metrics_set("process_open_fds", NULL, n - 1);
		}
	}
	metrics_set("process_start_time_seconds", NULL,
	            (double) m->started_wall / 1000.0);
	for (int s = 0; s < JOB_NSTATES; s++) {
		char *l =
		    metrics_labels("state", job_state_name((job_state) s), NULL);
		metrics_set("job_state", l, s == (int) now ? 1 : 0);
		free(l);
	}
}

/* ---- /status -------------------------------------------------------------
 */

typedef struct st_table {
	char *database, *table;
	double ops[4]; /* insert, update, delete, truncate */
	double copied, estimated, dirty;
	bool full, done;
} st_table;

typedef struct st_tables {
	st_table *t;
	size_t n;
	const char *family;
} st_tables;

static st_table *
st_find(st_tables *ts, const char *labels)
{
	char *db = metrics_label_value(labels, "database");
	char *tb = metrics_label_value(labels, "table");
	st_table *t = NULL;

	if (!tb) {
		free(db);
		return NULL;
	}
	if (!db)
		db = xstrdup("");
	for (size_t i = 0; i < ts->n && !t; i++)
		if (strcmp(ts->t[i].database, db) == 0 &&
		    strcmp(ts->t[i].table, tb) == 0)
			t = &ts->t[i];
	if (t) {
		free(db);
		free(tb);
		return t;
	}
	ts->t = xrealloc(ts->t, (ts->n + 1) * sizeof *ts->t);
	t = &ts->t[ts->n++];
	memset(t, 0, sizeof *t);
	t->database = db;
	t->table = tb;
	return t;
}

static void
st_each(void *ctx, const char *labels, double v)
{
	st_tables *ts = ctx;
	st_table *t = st_find(ts, labels);

	if (!t)
		return;
	if (strcmp(ts->family, "changes_applied_total") == 0) {
		static const char *const ops[] = {"insert", "update", "delete",
		                                  "truncate"};
		char *op = metrics_label_value(labels, "op");
		for (int i = 0; op && i < 4; i++)
			if (strcmp(op, ops[i]) == 0)
				t->ops[i] += v;
		free(op);
	} else if (strcmp(ts->family, "full_rows_copied") == 0) {
		t->copied = v;
		t->full = true;
	} else if (strcmp(ts->family, "full_rows_estimated") == 0)
		t->estimated = v;
	else if (strcmp(ts->family, "full_table_done") == 0)
		t->done = v > 0;
	else if (strcmp(ts->family, "dirty_rows_total") == 0)
		t->dirty += v;
}

static int
st_cmp(const void *a, const void *b)
{
	const st_table *x = a, *y = b;
	int c = strcmp(x->database, y->database);
	return c ? c : strcmp(x->table, y->table);
}

/* Streams: one object per database label of the stream families. */
typedef struct st_streams {
	json_object *arr;
	const char *family, *key;
} st_streams;

static json_object *
st_stream(json_object *arr, const char *db)
{
	size_t n = json_object_array_length(arr);
	json_object *o;

	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i), *d;
		if (json_object_object_get_ex(s, "database", &d) &&
		    strcmp(json_object_get_string(d), db) == 0)
			return s;
	}
	o = json_object_new_object();
	json_object_object_add(o, "database", json_object_new_string(db));
	json_object_array_add(arr, o);
	return o;
}

static void
st_lsn(json_object *o, const char *key, double v)
{
	char buf[32];
	uint64_t lsn = (uint64_t) v;

	snprintf(buf, sizeof buf, "%X/%X", (unsigned) (lsn >> 32),
	         (unsigned) lsn);
	json_object_object_add(o, key, json_object_new_string(buf));
}

static void
st_stream_each(void *ctx, const char *labels, double v)
{
	st_streams *ss = ctx;
	char *db = metrics_label_value(labels, "database");
	json_object *o, *old;

	if (!db)
		return;
	o = st_stream(ss->arr, db);
	if (strcmp(ss->key, "retained_wal_bytes") == 0 &&
	    json_object_object_get_ex(o, ss->key, &old) &&
	    json_object_get_double(old) > v)
		v = json_object_get_double(old); /* the largest slot */
	if (strstr(ss->key, "_lsn"))
		st_lsn(o, ss->key, v);
	else if (strcmp(ss->key, "lag_seconds") == 0)
		json_object_object_add(o, ss->key, json_object_new_double(v));
	else
		json_object_object_add(o, ss->key,
		                       json_object_new_int64((int64_t) v));
	free(db);
}

static char *
mon_iso(int64_t ms)
{
	char buf[40];
	time_t t = (time_t) (ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03dZ", buf, (int) (ms % 1000));
}

static double
mon_rate(monitor *m)
{
	size_t n;
	double rate;

	pthread_mutex_lock(&m->lock);
	n = m->nchanges;
	rate = n >= 2 ? (m->changes[n - 1] - m->changes[0]) / (double) (n - 1)
	              : 0;
	pthread_mutex_unlock(&m->lock);
	return rate < 0 ? 0 : rate;
}

/* The picture /status gives, as a JSON string. */
static char *
mon_status_json(monitor *m)
{
	job *j = m->j;
	json_object *root = json_object_new_object();
	json_object *streams = json_object_new_array();
	json_object *tables = json_object_new_array();
	json_object *alarms = json_object_new_array();
	static const char *const fams[] = {
	    "changes_applied_total", "full_rows_copied", "full_rows_estimated",
	    "full_table_done", "dirty_rows_total"};
	static const struct {
		const char *family, *key;
	} sfams[] = {{"confirmed_position_bytes", "confirmed_lsn"},
	             {"source_wal_position_bytes", "source_wal_lsn"},
	             {"lag_seconds", "lag_seconds"},
	             {"lag_bytes", "lag_bytes"},
	             {"slot_retained_wal_bytes", "retained_wal_bytes"},
	             {"transactions_total", "transactions"}};
	st_tables ts = {0};
	job_state state = job_current_state(j);
	int64_t err_ms = 0;
	char *err = job_last_error(j, &err_ms), *iso;
	const char *text;
	char *out;

	metrics_collect();
	json_object_object_add(root, "job", json_object_new_string(job_name(j)));
	json_object_object_add(root, "state",
	                       json_object_new_string(job_state_name(state)));
	json_object_object_add(root, "version",
	                       json_object_new_string(PACKAGE_VERSION));
	iso = mon_iso(m->started_wall);
	json_object_object_add(root, "started_at", json_object_new_string(iso));
	free(iso);
	json_object_object_add(
	    root, "uptime_seconds",
	    json_object_new_int64((wall_ms() - m->started_wall) / 1000));
	json_object_object_add(root, "changes_per_second",
	                       json_object_new_double(mon_rate(m)));
	json_object_object_add(
	    root, "changes_applied",
	    json_object_new_int64((int64_t) metrics_sum("changes_applied_total")));
	json_object_object_add(
	    root, "dirty_rows",
	    json_object_new_int64((int64_t) metrics_sum("dirty_rows_total")));

	for (size_t i = 0; i < sizeof sfams / sizeof sfams[0]; i++) {
		st_streams ss = {streams, sfams[i].family, sfams[i].key};
		metrics_each(sfams[i].family, st_stream_each, &ss);
	}
	json_object_object_add(root, "streams", streams);

	for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
		ts.family = fams[i];
		metrics_each(fams[i], st_each, &ts);
	}
	qsort(ts.t, ts.n, sizeof *ts.t, st_cmp);
	for (size_t i = 0; i < ts.n; i++) {
		st_table *t = &ts.t[i];
		json_object *o = json_object_new_object();
		const char *phase =
		    t->full && !t->done       ? "copying"
		    : state == JOB_STREAMING  ? "streaming"
		    : t->done && !j->info.incremental ? "copied"
		                                      : job_state_name(state);
		json_object_object_add(o, "database",
		                       json_object_new_string(t->database));
		json_object_object_add(o, "table",
		                       json_object_new_string(t->table));
		json_object_object_add(o, "phase",
		                       json_object_new_string(phase));
		if (t->full) {
			json_object_object_add(
			    o, "rows_copied",
			    json_object_new_int64((int64_t) t->copied));
			json_object_object_add(
			    o, "rows_estimated",
			    json_object_new_int64((int64_t) t->estimated));
		}
		json_object_object_add(o, "inserts",
		                       json_object_new_int64((int64_t) t->ops[0]));
		json_object_object_add(o, "updates",
		                       json_object_new_int64((int64_t) t->ops[1]));
		json_object_object_add(o, "deletes",
		                       json_object_new_int64((int64_t) t->ops[2]));
		json_object_object_add(o, "truncates",
		                       json_object_new_int64((int64_t) t->ops[3]));
		json_object_object_add(o, "dirty_rows",
		                       json_object_new_int64((int64_t) t->dirty));
		json_object_array_add(tables, o);
		free(t->database);
		free(t->table);
	}
	free(ts.t);
	json_object_object_add(root, "tables", tables);

	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < NRULES; i++) {
		alarm_rule *r = &m->rules[i];
		json_object *o;
		if (!r->on)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(r->name));
		json_object_object_add(o, "firing",
		                       json_object_new_boolean(r->firing));
		json_object_object_add(o, "value",
		                       json_object_new_double(r->value));
		json_object_object_add(o, "threshold",
		                       json_object_new_double(r->threshold));
		json_object_object_add(o, "unit", json_object_new_string(r->unit));
		json_object_array_add(alarms, o);
	}
	pthread_mutex_unlock(&m->lock);
	json_object_object_add(root, "alarms", alarms);

	if (err) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "message",
		                       json_object_new_string(err));
		iso = mon_iso(err_ms);
		json_object_object_add(o, "time", json_object_new_string(iso));
		free(iso);
		json_object_object_add(root, "last_error", o);
		free(err);
	} else
		json_object_object_add(root, "last_error", NULL);

	text = json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	out = xasprintf("%s\n", text);
	json_object_put(root);
	return out;
}

/* ---- the endpoint --------------------------------------------------------
 */

static enum MHD_Result
mon_reply(struct MHD_Connection *c, unsigned code, const char *type,
          char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
mon_http(void *cls, struct MHD_Connection *c, const char *url,
         const char *method, const char *version, const char *upload,
         size_t *upload_size, void **con_cls)
{
	static int seen;
	monitor *m = cls;
	const char *text = "text/plain; charset=utf-8";

	(void) version;
	(void) upload;
	if (*con_cls == NULL) {
		/* the headers; a body, if any, comes in the next calls */
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return mon_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text,
		                 xstrdup("only GET and HEAD\n"));
	if (strcmp(url, "/metrics") == 0) {
		strbuf sb = {0};
		metrics_format(&sb, job_name(m->j));
		return mon_reply(c, MHD_HTTP_OK,
		                 "text/plain; version=0.0.4; charset=utf-8",
		                 sb_steal(&sb));
	}
	if (strcmp(url, "/status") == 0)
		return mon_reply(c, MHD_HTTP_OK, "application/json",
		                 mon_status_json(m));
	if (strcmp(url, "/healthz") == 0) {
		job_state s = job_current_state(m->j);
		bool ok = s == JOB_COPYING || s == JOB_STREAMING;
		return mon_reply(c,
		                 ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
		                 text, xasprintf("%s\n", job_state_name(s)));
	}
	if (strcmp(url, "/") == 0)
		return mon_reply(
		    c, MHD_HTTP_OK, text,
		    xasprintf("syncd %s, job %s\n/metrics  Prometheus metrics\n"
		              "/status   the job as JSON\n"
		              "/healthz  200 while copying or streaming\n",
		              PACKAGE_VERSION, job_name(m->j)));
	return mon_reply(c, MHD_HTTP_NOT_FOUND, text,
	                 xstrdup("not found: try /metrics, /status or "
	                         "/healthz\n"));
}

static void
mon_http_log(void *cls, const char *fmt, va_list ap)
{
	(void) cls;
	if (log_enabled(SYNCD_LEVEL_DEBUG))
		log_vmsg("[monitor]", SYNCD_LEVEL_DEBUG, fmt, ap);
}

static bool
mon_listen(monitor *m, const char *listen)
{
	char *host = NULL, *port = NULL;
	const char *why = "";
	struct addrinfo *ai = NULL;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	bool v6;

	if (mon_split_listen(listen, &host, &port, &why))
		ai = mon_resolve(host, port, &why);
	if (!ai) {
		log_error("[monitor] metrics.listen = %s: %s", listen, why);
		free(host);
		free(port);
		return false;
	}
	v6 = ai->ai_family == AF_INET6;
	if (v6)
		flags |= MHD_USE_IPv6;
	m->http = MHD_start_daemon(
	    flags, 0, NULL, NULL, mon_http, m, MHD_OPTION_SOCK_ADDR,
	    ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) 16,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32768,
	    MHD_OPTION_EXTERNAL_LOGGER, mon_http_log, NULL, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!m->http) {
		log_error("[monitor] metrics.listen = %s: could not listen "
		          "(%s); choose a free port, or an address of this "
		          "host",
		          listen, errno ? strerror(errno) : "unknown error");
		free(host);
		free(port);
		return false;
	}
	info = MHD_get_daemon_info(m->http, MHD_DAEMON_INFO_BIND_PORT);
	m->url = xasprintf("http://%s%s%s:%u", v6 ? "[" : "", host,
	                   v6 ? "]" : "", info ? (unsigned) info->port : 0);
	free(host);
	free(port);
	log_info("[monitor] serving %s/metrics, /status and /healthz",
	         m->url);
	/* for syncd --status, and for whoever asked for port 0 */
	m->url_file = xasprintf("%s/monitor.url", m->j->state_dir);
	if (mkdir_p(m->j->state_dir) == 0) {
		FILE *f = fopen(m->url_file, "w");
		if (f) {
			fprintf(f, "%s\n", m->url);
			fclose(f);
		}
	}
	return true;
}

/* ---- alarms --------------------------------------------------------------
 */

static void
mon_fmt_value(const alarm_rule *r, double v, char *out, size_t n)
{
	if (strcmp(r->unit, "bytes") == 0) {
		if (v >= 1e9)
			snprintf(out, n, "%.2f GB", v / 1e9);
		else
			snprintf(out, n, "%.1f MB", v / 1e6);
	} else if (strcmp(r->unit, "seconds") == 0)
		snprintf(out, n, "%.1f s", v);
	else
		snprintf(out, n, "%.0f rows", v);
}

/* Reads what the command printed and logs whole lines. */
static void
mon_cmd_output(alarm_rule *r, bool all)
{
	char buf[4096];
	ssize_t got;

	if (r->out < 0)
		return;
	while ((got = read(r->out, buf, sizeof buf)) > 0) {
		char *nl;
		sb_append(&r->pending, buf, (size_t) got);
		while ((nl = memchr(r->pending.data, '\n', r->pending.len))) {
			size_t line = (size_t) (nl - r->pending.data);
			size_t rest = r->pending.len - line - 1;
			log_info("[monitor] alarm.command (%s): %.*s", r->name,
			         (int) (line < 500 ? line : 500),
			         r->pending.data);
			memmove(r->pending.data, nl + 1, rest + 1);
			r->pending.len = rest;
		}
	}
	if (all && r->pending.len) {
		log_info("[monitor] alarm.command (%s): %.500s", r->name,
		         r->pending.data);
		sb_free(&r->pending);
	}
	if (all || got == 0) {
		close(r->out);
		r->out = -1;
	}
}

/* Reaps the rule's command, kills it when it hangs. */
static void
mon_cmd_reap(monitor *m, alarm_rule *r)
{
	int status;
	pid_t got;

	if (r->pid <= 0)
		return;
	mon_cmd_output(r, false);
	got = waitpid(r->pid, &status, WNOHANG);
	if (got == r->pid) {
		mon_cmd_output(r, true);
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warning("[monitor] alarm.command for %s exited "
			            "with status %d",
			            r->name, WEXITSTATUS(status));
		else if (WIFSIGNALED(status) && !r->killed)
			log_warning("[monitor] alarm.command for %s was "
			            "killed by signal %d",
			            r->name, WTERMSIG(status));
		r->pid = 0;
		r->killed = 0;
		return;
	}
	if (!r->killed && now_ms() - r->started > m->cmd_timeout_ms) {
		log_warning("[monitor] alarm.command for %s still runs after "
		            "%.0f s: stopping it (SIGTERM, then SIGKILL)",
		            r->name, (double) m->cmd_timeout_ms / 1000.0);
		kill(-r->pid, SIGTERM);
		r->killed = now_ms();
	} else if (r->killed && now_ms() - r->killed > MON_CMD_KILL_MS)
		kill(-r->pid, SIGKILL);
}

static void
mon_cmd_run(monitor *m, alarm_rule *r, const char *message)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	int pipefd[2];
	char **env;
	size_t n = 0, k;
	char val[64], thr[64];
	int rc;

	if (m->ncmd == 0)
		return;
	if (r->pid > 0) {
		log_warning("[monitor] alarm.command for %s is still running "
		            "from the last time; not run again for this "
		            "change",
		            r->name);
		return;
	}
	if (pipe(pipefd) != 0) {
		log_warning("[monitor] alarm.command: no pipe: %s",
		            strerror(errno));
		return;
	}
	/* the other commands and connections are not the child's */
	fcntl(pipefd[0], F_SETFD, FD_CLOEXEC);
	fcntl(pipefd[1], F_SETFD, FD_CLOEXEC);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	while (environ[n])
		n++;
	env = xcalloc(n + 8, sizeof *env);
	for (k = 0; k < n; k++)
		env[k] = environ[k];
	snprintf(val, sizeof val, "%g", r->value);
	snprintf(thr, sizeof thr, "%g", r->threshold);
	env[k++] = xasprintf("SYNCD_ALARM=%s", r->name);
	env[k++] = xasprintf("SYNCD_ALARM_STATE=%s",
	                     r->firing ? "firing" : "cleared");
	env[k++] = xasprintf("SYNCD_ALARM_VALUE=%s", val);
	env[k++] = xasprintf("SYNCD_ALARM_THRESHOLD=%s", thr);
	env[k++] = xasprintf("SYNCD_ALARM_UNIT=%s", r->unit);
	env[k++] = xasprintf("SYNCD_ALARM_MESSAGE=%s", message);
	env[k++] = xasprintf("SYNCD_JOB=%s", job_name(m->j));

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawnattr_init(&at);
	/* its own process group (a hang is killed whole), no signals of
	 * ours blocked or ignored */
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	                                  POSIX_SPAWN_SETSIGMASK |
	                                  POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(&r->pid, m->cmd[0], &fa, &at, m->cmd, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pipefd[1]);
	for (size_t i = n; i < k; i++)
		free(env[i]);
	free(env);
	if (rc != 0) {
		log_warning("[monitor] alarm.command %s could not run: %s",
		            m->cmd[0], strerror(rc));
		r->pid = 0;
		close(pipefd[0]);
		return;
	}
	r->out = pipefd[0];
	r->started = now_ms();
	r->killed = 0;
}

/* Dirty rows refused within the last alarm.interval. */
static double
mon_dirty_window(monitor *m, int64_t now)
{
	double total = metrics_sum("dirty_rows_total");
	size_t drop = 0;

	m->dirty = xrealloc(m->dirty, (m->ndirty + 1) * sizeof *m->dirty);
	m->dirty[m->ndirty++] = (struct dirty_sample){now, total};
	/* keep one sample at or before the start of the window */
	while (drop + 1 < m->ndirty &&
	       m->dirty[drop + 1].ms <= now - m->interval_ms)
		drop++;
	if (drop) {
		memmove(m->dirty, m->dirty + drop,
		        (m->ndirty - drop) * sizeof *m->dirty);
		m->ndirty -= drop;
	}
	return total - m->dirty[0].total;
}

static void
mon_alarms(monitor *m, int64_t now)
{
	double values[NRULES];

	values[RULE_LAG] = metrics_max("lag_seconds");
	values[RULE_DIRTY] = mon_dirty_window(m, now);
	values[RULE_WAL] = metrics_max("slot_retained_wal_bytes");
	for (int i = 0; i < NRULES; i++) {
		alarm_rule *r = &m->rules[i];
		bool over;
		char v[32], t[32], *msg;

		mon_cmd_reap(m, r);
		if (!r->on)
			continue;
		pthread_mutex_lock(&m->lock);
		r->value = values[i];
		pthread_mutex_unlock(&m->lock);
		over = i == RULE_DIRTY ? values[i] >= r->threshold
		                       : values[i] > r->threshold;
		if (over == r->firing)
			continue;
		if (r->last_run && now - r->last_run < m->interval_ms)
			continue; /* told within alarm.interval: later */
		if (r->pid > 0)
			continue; /* told when the last command is done */
		pthread_mutex_lock(&m->lock);
		r->firing = over;
		pthread_mutex_unlock(&m->lock);
		r->last_run = now;
		mon_fmt_value(r, values[i], v, sizeof v);
		mon_fmt_value(r, r->threshold, t, sizeof t);
		if (over) {
			msg = xasprintf("alarm %s fired: %s%s, %s [monitor] "
			                "%s = %s",
			                r->name, v,
			                i == RULE_DIRTY ? " within alarm.interval"
			                                : "",
			                i == RULE_DIRTY ? "reaching" : "over",
			                r->key, t);
			log_warning("[monitor] %s", msg);
		} else {
			msg = xasprintf("alarm %s cleared: %s, within "
			                "[monitor] %s = %s",
			                r->name, v, r->key, t);
			log_info("[monitor] %s", msg);
		}
		mon_cmd_run(m, r, msg);
		free(msg);
	}
}

/* ---- the status line -----------------------------------------------------
 */

static void
mon_status_line(monitor *m, int64_t now)
{
	double changes = metrics_sum("changes_applied_total");
	double secs = (double) (now - m->last_log) / 1000.0;
	double wal = metrics_max("slot_retained_wal_bytes");
	char walbuf[32];
	alarm_rule r = {.unit = "bytes"};

	if (job_current_state(m->j) != JOB_STREAMING) {
		m->changes_at_log = changes;
		m->last_log = now;
		return;
	}
	mon_fmt_value(&r, wal, walbuf, sizeof walbuf);
	log_info("streaming: %.0f changes/s over %.0f s, lag %.1f s, %.0f "
	         "dirty rows, retained WAL %s",
	         secs > 0 ? (changes - m->changes_at_log) / secs : 0, secs,
	         metrics_max("lag_seconds"), metrics_sum("dirty_rows_total"),
	         wal > 0 ? walbuf : "unknown");
	m->changes_at_log = changes;
	m->last_log = now;
}

static void *
mon_main(void *arg)
{
	monitor *m = arg;

	thread_name("syncd-monitor");
	m->last_log = now_ms();
	while (!atomic_load(&m->stop)) {
		int64_t now;
		double changes;

		for (int t = 0; t < MON_TICK_MS / 100 && !atomic_load(&m->stop);
		     t++)
			usleep(100000);
		now = now_ms();
		metrics_collect();
		changes = metrics_sum("changes_applied_total");
		pthread_mutex_lock(&m->lock);
		if (m->nchanges == MON_RATE_WINDOW + 1) {
			memmove(m->changes, m->changes + 1,
			        MON_RATE_WINDOW * sizeof *m->changes);
			m->nchanges--;
		}
		m->changes[m->nchanges++] = changes;
		pthread_mutex_unlock(&m->lock);
		mon_alarms(m, now);
		if (m->log_ms > 0 && now - m->last_log >= m->log_ms)
			mon_status_line(m, now);
		sdn_tick(&m->notify, job_current_state(m->j));
	}
	return NULL;
}

monitor *
monitor_start(job *j)
{
	monitor *m = xcalloc(1, sizeof *m);
	const char *listen = optset_str(&j->monitor_opts, "metrics.listen");
	static const struct {
		const char *name, *key, *unit;
	} rules[NRULES] = {{"lag", "alarm.lag", "seconds"},
	                   {"dirty_rows", "alarm.dirty_rows", "rows"},
	                   {"retained_wal", "alarm.retained_wal", "bytes"}};

	m->j = j;
	m->started_wall = wall_ms();
	sdn_init(&m->notify);
	m->interval_ms = optset_num(&j->monitor_opts, "alarm.interval");
	m->log_ms = optset_num(&j->monitor_opts, "log.interval");
	m->cmd_timeout_ms = m->interval_ms < MON_CMD_TIMEOUT_MS
	                        ? m->interval_ms
	                        : MON_CMD_TIMEOUT_MS;
	m->cmd = mon_words(optset_str(&j->monitor_opts, "alarm.command"),
	                   &m->ncmd);
	pthread_mutex_init(&m->lock, NULL);
	for (int i = 0; i < NRULES; i++) {
		const opt_value *v = optset_get(&j->monitor_opts, rules[i].key);
		alarm_rule *r = &m->rules[i];
		r->name = rules[i].name;
		r->key = rules[i].key;
		r->unit = rules[i].unit;
		r->out = -1;
		r->on = v && v->text && *v->text;
		r->threshold = (double) optset_num(&j->monitor_opts,
		                                   rules[i].key);
		if (i == RULE_LAG)
			r->threshold /= 1000.0; /* ms -> s */
	}
	{
		char abi[16], *l;
		snprintf(abi, sizeof abi, "%d.%d", SYNCD_ABI_MAJOR,
		         SYNCD_ABI_MINOR);
		l = metrics_labels("version", PACKAGE_VERSION, "abi", abi, NULL);
		metrics_set("build_info", l, 1);
		free(l);
	}
	metrics_collector_add(mon_collect_process, m);
	if (listen && *listen && !mon_listen(m, listen)) {
		monitor_stop(m);
		return NULL;
	}
	if (pthread_create(&m->thread, NULL, mon_main, m) == 0)
		m->thread_started = true;
	return m;
}

void
monitor_stop(monitor *m)
{
	if (!m)
		return;
	atomic_store(&m->stop, true);
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	sdn_stop(&m->notify);
	if (m->http)
		MHD_stop_daemon(m->http);
	metrics_collector_remove(mon_collect_process, m);
	if (m->url_file)
		unlink(m->url_file);
	/* a command just run (a rule that cleared at the stop) gets a moment
	 * to finish and be logged; one that hangs is left to itself */
	for (int64_t t = 0; t < MON_CMD_WAIT_MS; t += 50) {
		bool running = false;
		for (int i = 0; i < NRULES; i++) {
			mon_cmd_reap(m, &m->rules[i]);
			running = running || m->rules[i].pid > 0;
		}
		if (!running)
			break;
		usleep(50000);
	}
	for (int i = 0; i < NRULES; i++) {
		alarm_rule *r = &m->rules[i];
		if (r->pid > 0 && waitpid(r->pid, NULL, WNOHANG) == 0)
			log_info("[monitor] alarm.command for %s is still "
			         "running (pid %d); not waited for",
			         r->name, (int) r->pid);
		if (r->out >= 0)
			mon_cmd_output(r, true);
		sb_free(&r->pending);
	}
	mon_free_words(m->cmd);
	free(m->dirty);
	free(m->url);
	free(m->url_file);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- syncd --status ------------------------------------------------------
 */

static size_t
mon_curl_write(char *data, size_t size, size_t n, void *ctx)
{
	strbuf *sb = ctx;

	if (sb->len > 64 * 1024 * 1024)
		return 0; /* not a status */
	sb_append(sb, data, size * n);
	return size * n;
}

/* The running job's endpoint: the file it wrote, or the configured one. */
static char *
mon_status_url(job *j)
{
	char *file = xasprintf("%s/monitor.url", j->state_dir);
	FILE *f = fopen(file, "r");
	const char *listen = optset_str(&j->monitor_opts, "metrics.listen");
	char line[512], *url = NULL;

	free(file);
	if (f) {
		if (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (strncmp(line, "http://", 7) == 0)
				url = xstrdup(line);
		}
		fclose(f);
	}
	if (!url && listen && *listen) {
		char *host, *port;
		const char *why;
		/* port 0 is only known from the file */
		if (mon_split_listen(listen, &host, &port, &why) &&
		    strcmp(port, "0") == 0) {
			free(host);
			free(port);
		} else if (host) {
			bool v6 = strchr(host, ':') != NULL;
			/* a wildcard address is reached on loopback */
			const char *h = strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1"
			                : strcmp(host, "::") == 0    ? "::1"
			                                             : host;
			url = xasprintf("http://%s%s%s:%s", v6 ? "[" : "", h,
			                v6 ? "]" : "", port);
			free(host);
			free(port);
		}
	}
	return url;
}

static const char *
mon_jstr(json_object *o, const char *key, const char *dflt)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && v &&
	               json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : dflt;
}

static double
mon_jnum(json_object *o, const char *key, bool *has)
{
	json_object *v;
	bool ok = json_object_object_get_ex(o, key, &v) && v;
	if (has)
		*has = ok;
	return ok ? json_object_get_double(v) : 0;
}

static void
mon_human_bytes(double b, char *out, size_t n)
{
	if (b >= 1e9)
		snprintf(out, n, "%.2f GB", b / 1e9);
	else if (b >= 1e6)
		snprintf(out, n, "%.1f MB", b / 1e6);
	else
		snprintf(out, n, "%.0f kB", b / 1e3);
}

static void
mon_print_status(json_object *root, FILE *out)
{
	json_object *arr, *err;
	double up = mon_jnum(root, "uptime_seconds", NULL);
	long u = (long) up;

	fprintf(out, "job %s: %s for %ld:%02ld:%02ld (syncd %s)\n",
	        mon_jstr(root, "job", "?"), mon_jstr(root, "state", "?"),
	        u / 3600, u / 60 % 60, u % 60, mon_jstr(root, "version", "?"));
	fprintf(out, "  %.0f changes/s, %.0f changes applied, %.0f dirty rows\n",
	        mon_jnum(root, "changes_per_second", NULL),
	        mon_jnum(root, "changes_applied", NULL),
	        mon_jnum(root, "dirty_rows", NULL));
	if (json_object_object_get_ex(root, "streams", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *s = json_object_array_get_idx(arr, i);
			bool has_lag, has_bytes, has_wal;
			double lag = mon_jnum(s, "lag_seconds", &has_lag);
			double bytes = mon_jnum(s, "lag_bytes", &has_bytes);
			double wal = mon_jnum(s, "retained_wal_bytes", &has_wal);
			char b1[32], b2[32];
			mon_human_bytes(bytes, b1, sizeof b1);
			mon_human_bytes(wal, b2, sizeof b2);
			fprintf(out, "  database %s: confirmed %s", 
			        mon_jstr(s, "database", "?"),
			        mon_jstr(s, "confirmed_lsn", "-"));
			if (has_lag)
				fprintf(out, ", lag %.1f s", lag);
			if (has_bytes)
				fprintf(out, ", %s of WAL behind", b1);
			if (has_wal)
				fprintf(out, ", slots retain %s", b2);
			fputc('\n', out);
		}
	if (json_object_object_get_ex(root, "tables", &arr) &&
	    json_object_array_length(arr) > 0) {
		fprintf(out, "  %-40s %-9s %12s %10s %10s %10s %6s\n", "table",
		        "phase", "copied", "inserts", "updates", "deletes",
		        "dirty");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *t = json_object_array_get_idx(arr, i);
			char name[512], copied[32] = "-";
			bool has;
			double c = mon_jnum(t, "rows_copied", &has);
			snprintf(name, sizeof name, "%s%s%s",
			         mon_jstr(t, "database", ""),
			         *mon_jstr(t, "database", "") ? ":" : "",
			         mon_jstr(t, "table", "?"));
			if (has)
				snprintf(copied, sizeof copied, "%.0f", c);
			fprintf(out, "  %-40s %-9s %12s %10.0f %10.0f %10.0f %6.0f\n",
			        name, mon_jstr(t, "phase", "?"), copied,
			        mon_jnum(t, "inserts", NULL),
			        mon_jnum(t, "updates", NULL),
			        mon_jnum(t, "deletes", NULL),
			        mon_jnum(t, "dirty_rows", NULL));
		}
	}
	if (json_object_object_get_ex(root, "alarms", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *a = json_object_array_get_idx(arr, i), *f;
			bool firing = json_object_object_get_ex(a, "firing", &f) &&
			              json_object_get_boolean(f);
			fprintf(out, "  alarm %s: %s (%g, threshold %g %s)\n",
			        mon_jstr(a, "name", "?"),
			        firing ? "FIRING" : "ok",
			        mon_jnum(a, "value", NULL),
			        mon_jnum(a, "threshold", NULL),
			        mon_jstr(a, "unit", ""));
		}
	if (json_object_object_get_ex(root, "last_error", &err) && err)
		fprintf(out, "  last error at %s: %s\n",
		        mon_jstr(err, "time", "?"),
		        mon_jstr(err, "message", "?"));
}

/* With no endpoint: what the destination says the job has applied. */
static int
mon_stored_progress(job *j, FILE *out)
{
	const syncd_sink_ops *sink = &j->sink->plugin->ops.sink;
	bool any = false;

	if (!sink->applied_lsn) {
		fprintf(out, "job %s: the sink %s keeps no progress to show\n",
		        job_name(j), j->sink->prefix);
		return 1;
	}
	if (!job_list_streams(j))
		return 1;
	fprintf(out, "job %s: progress recorded at the destination "
	             "(%s, [sink] state.schema):\n",
	        job_name(j), j->sink->prefix);
	for (uint32_t s = 0; s < j->nstreams; s++) {
		syncd_lsn least = 0;
		bool first = true, known = true;
		for (int w = 0; w < j->nworkers && known; w++) {
			void *ws = NULL;
			syncd_lsn lsn = 0;
			if (sink->open(j->sink->state, w, &ws) != SYNCD_OK) {
				fprintf(stderr, "syncd: %s: %s\n",
				        j->sink->prefix, plugerr_msg(j->sink));
				return 1;
			}
			if (sink->applied_lsn(ws, s, &lsn) != SYNCD_OK)
				known = false;
			sink->close(ws);
			if (first || lsn < least)
				least = lsn;
			first = false;
		}
		if (!known) {
			fprintf(stderr, "syncd: %s: %s\n", j->sink->prefix,
			        plugerr_msg(j->sink));
			return 1;
		}
		if (least) {
			any = true;
			fprintf(out,
			        "  stream %s: applied up to " SYNCD_LSN_FMT
			        " by every worker\n",
			        job_stream_name(j, s), SYNCD_LSN_ARGS(least));
		} else
			fprintf(out, "  stream %s: nothing applied yet\n",
			        job_stream_name(j, s));
	}
	return any ? 0 : 1;
}

bool
monitor_running(job *j, char **url_out)
{
	char *url = mon_status_url(j), *full;
	CURL *c;
	CURLcode rc = CURLE_FAILED_INIT;

	*url_out = url;
	if (!url)
		return false;
	full = xasprintf("%s/healthz", url);
	c = curl_easy_init();
	if (c) {
		curl_easy_setopt(c, CURLOPT_URL, full);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		rc = curl_easy_perform(c);
		curl_easy_cleanup(c);
	}
	free(full);
	/* any answer, 200 or 503: something serves the job's endpoint */
	return rc == CURLE_OK;
}

int
monitor_status_command(job *j, FILE *out)
{
	char *url = mon_status_url(j);

	if (url) {
		char *full = xasprintf("%s/status", url);
		CURL *c = curl_easy_init();
		strbuf body = {0};
		long code = 0;
		CURLcode rc = CURLE_FAILED_INIT;
		if (c) {
			curl_easy_setopt(c, CURLOPT_URL, full);
			curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
			curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
			curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
			curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
			                 mon_curl_write);
			curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
			rc = curl_easy_perform(c);
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_cleanup(c);
		}
		if (rc == CURLE_OK && code == 200 && body.data) {
			json_object *root = json_tokener_parse(body.data);
			if (root) {
				mon_print_status(root, out);
				json_object_put(root);
				sb_free(&body);
				free(full);
				free(url);
				return 0;
			}
		}
		fprintf(out,
		        "no answer from %s (%s): the job is not running, or "
		        "listens elsewhere\n",
		        full,
		        rc != CURLE_OK ? curl_easy_strerror(rc)
		                       : "not a status");
		sb_free(&body);
		free(full);
		free(url);
	}
	if (!instance_create_all(j))
		return 1;
	return mon_stored_progress(j, out);
}
