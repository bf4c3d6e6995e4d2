/*
 * core/main.c - the syncd command line. Only main decides the exit code:
 * 0 clean stop, 1 job failed, 2 bad usage or job file, 3 a pre-check failed.
 */
#include "config.h"

#include "instance.h"
#include "livecopy.h"
#include "coreopts.h"
#include "jobload.h"
#include "plugerr.h"
#include "prepare.h"
#include "retire.h"
#include "rewind.h"
#include "verify.h"
#include "runner.h"
#include "loader.h"
#include "log.h"
#include "manpage.h"
#include "metrics.h"
#include "monitor.h"
#include "options.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_JOB_FAILED 1
#define EXIT_USAGE      2
#define EXIT_PRECHECK   3

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: syncd -c JOB.ini [options]\n"
	    "       syncd --list-plugins | --plugin-help NAME | --version\n"
	    "\n"
	    "Keeps a destination database in sync with PostgreSQL: copies the\n"
	    "selected tables once, then streams every committed change.\n"
	    "\n"
	    "  -c, --config FILE      the job file\n"
	    "      --check            run the pre-checks only\n"
	    "      --start-time TIME  go back to a past commit time (ISO 8601 "
	    "with\n"
	    "                         its offset, or how long ago: 2hours)\n"
	    "                         and apply again what committed since\n"
	    "      --create-tables    create the destination tables only\n"
	    "      --resync           start over: drop the job's slots, "
	    "forget\n"
	    "                         the destination's progress, copy every\n"
	    "                         table again, then stream\n"
	    "      --resync TABLE...  copy these tables again (schema.table,\n"
	    "                         commas or spaces between) while the job\n"
	    "                         streams: a running job does it now and\n"
	    "                         this waits, else its next start\n"
	    "      --preview          list the source tables each table "
	    "matches\n"
	    "      --drop [--yes]     retire the job: list what it left behind\n"
	    "                         (slots, a publication it created, its\n"
	    "                         state); with --yes remove it\n"
	    "      --verify [TABLE...] [--repair]\n"
	    "                         compare the tables with their targets\n"
	    "                         (hashes of key ranges in both databases);\n"
	    "                         exit 1 when any differs; --repair copies\n"
	    "                         the differing ranges again\n"
	    "      --status           show the running job's state (from its\n"
	    "                         [monitor] endpoint, else the progress\n"
	    "                         the destination keeps)\n"
	    "      --list-plugins     list the plugins found, with kind and "
	    "version\n"
	    "      --plugin-help NAME the options of plugin NAME, with "
	    "defaults\n"
	    "      --plugin-dir DIR   look for plugins in DIR first\n"
	    "      --log-level LEVEL  error, warning, info (default) or debug\n"
	    "      --version          print the version and the plugin ABI\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Plugins are searched in --plugin-dir, then $SYNCD_PLUGIN_PATH\n"
	    "(colon-separated), then the build tree's plugins/ (a syncd not\n"
	    "installed), then %s.\n"
	    "Exit codes: 0 clean stop, 1 job failed, 2 bad usage or job file,\n"
	    "3 a pre-check failed.\n",
	    PLUGINDIR);
}

static void
print_option(const syncd_option *o)
{
	char dflt[128];

	if (o->flags & SYNCD_OPT_REQUIRED)
		snprintf(dflt, sizeof dflt, "required");
	else if (o->default_value && *o->default_value)
		snprintf(dflt, sizeof dflt, "default %s", o->default_value);
	else
		snprintf(dflt, sizeof dflt, "no default");
	printf("  %-32s %-9s %s%s\n", o->name, options_type_name(o->type), dflt,
	       (o->flags & SYNCD_OPT_SECRET) ? ", secret" : "");
	printf("  %-32s %s\n", "", o->help);
	if (o->type == SYNCD_OPT_ENUM)
		printf("  %-32s one of: %s\n", "", o->choices);
	if (o->min || o->max)
		printf("  %-32s range: %lld .. %lld%s\n", "",
		       (long long) o->min, (long long) o->max,
		       o->type == SYNCD_OPT_DURATION ? " ms"
		       : o->type == SYNCD_OPT_SIZE   ? " bytes"
		                                     : "");
}

static int
cmd_plugin_help(const char *name)
{
	char *err = NULL;
	const loaded_plugin *p = loader_load(name, &err);
	const char *section;

	if (!p) {
		fprintf(stderr, "syncd: %s\n", err);
		free(err);
		return EXIT_USAGE;
	}
	switch (p->d.kind) {
	case SYNCD_KIND_SOURCE: section = "[source]"; break;
	case SYNCD_KIND_SINK: section = "[sink]"; break;
	case SYNCD_KIND_TRANSFORM: section = "[transform.NAME]"; break;
	default: section = "[archiver]"; break;
	}
	printf("%s %s (%s plugin, ABI %u.%u)\n", p->d.name, p->d.version,
	       loader_kind_name(p->d.kind), p->d.abi_major, p->d.abi_minor);
	if (p->d.description)
		printf("%s\n", p->d.description);
	printf("file: %s\n\nkeys of %s for this plugin:\n", p->path, section);
	if (!p->d.options || !p->d.options->name)
		printf("  (none)\n");
	for (const syncd_option *o = p->d.options; o && o->name; o++)
		print_option(o);
	if (p->d.kind == SYNCD_KIND_SOURCE) {
		printf("\nkeys of [source] that syncd itself reads, for every "
		       "source:\n");
		for (const syncd_option *o = job_source_core; o->name; o++)
			print_option(o);
	}
	if (p->d.kind == SYNCD_KIND_SINK) {
		printf("\nkeys of [sink] that syncd itself reads, for every "
		       "sink:\n");
		for (const syncd_option *o = job_sink_core_options; o->name;
		     o++)
			print_option(o);
	}
	return 0;
}

static int
cmd_list_plugins(void)
{
	const loaded_plugin **list = NULL;
	strbuf problems = {0};
	size_t n = loader_list(&list, &problems);
	char *dirs = loader_search_path();

	printf("%-16s %-10s %-9s %s\n", "NAME", "KIND", "VERSION",
	       "DESCRIPTION");
	for (size_t i = 0; i < n; i++)
		printf("%-16s %-10s %-9s %s\n", list[i]->d.name,
		       loader_kind_name(list[i]->d.kind), list[i]->d.version,
		       list[i]->d.description ? list[i]->d.description : "");
	if (n == 0)
		printf("(no plugins found)\n");
	printf("\nsearched, in order:\n");
	for (char *line = strtok(dirs, "\n"); line; line = strtok(NULL, "\n"))
		printf("  %s\n", line);
	if (problems.len)
		fprintf(stderr, "\nfiles that are not usable plugins:\n%s",
		        problems.data);
	free(list);
	free(dirs);
	sb_free(&problems);
	return 0;
}

/* Runs the job, restarting it after a failure when auto_retry is on. */
static int
run_with_retry(job *j)
{
	bool auto_retry = optset_num(&j->job_opts, "auto_retry") != 0;
	int64_t max = optset_num(&j->job_opts, "max_retries");
	int64_t interval = optset_num(&j->job_opts, "retry_interval");
	int rc = runner_run(j);

	for (int64_t attempt = 1;
	     rc == EXIT_JOB_FAILED && auto_retry && attempt <= max; attempt++) {
		if (atomic_load(&j->invalid)) {
			log_error("auto_retry: not restarting: the job cannot "
			          "run as configured (see above)");
			return rc;
		}
		sigset_t sigs;
		struct timespec ts = {interval / 1000,
		                      (interval % 1000) * 1000000L};

		log_info("auto_retry: restarting the job from its last "
		         "checkpoint in "
		         "%lld ms (retry %lld of %lld)",
		         (long long) interval, (long long) attempt,
		         (long long) max);
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		sigaddset(&sigs, SIGHUP);
		atomic_store(&j->phase, JOB_RETRYING);
		if (sigtimedwait(&sigs, NULL, &ts) > 0) {
			log_info("stopped while waiting to retry");
			atomic_store(&j->phase, JOB_FAILED);
			return EXIT_JOB_FAILED;
		}
		metrics_add("retries_total", NULL, 1);
		if (!instance_restart(j)) {
			atomic_store(&j->phase, JOB_FAILED);
			return EXIT_JOB_FAILED;
		}
		rc = runner_run(j);
	}
	if (rc == EXIT_JOB_FAILED && auto_retry && !atomic_load(&j->invalid))
		log_error("auto_retry: gave up after %lld restart(s)",
		          (long long) max);
	return rc;
}

int
main(int argc, char **argv)
{
	enum {
		OPT_CHECK = 256,
		OPT_START_TIME,
		OPT_CREATE_TABLES,
		OPT_PREVIEW,
		OPT_LIST_PLUGINS,
		OPT_PLUGIN_HELP,
		OPT_PLUGIN_DIR,
		OPT_LOG_LEVEL,
		OPT_RESYNC,
		OPT_STATUS,
		OPT_DROP,
		OPT_MAN_INI,
		OPT_YES,
		OPT_VERIFY,
		OPT_REPAIR,
		OPT_VERSION
	};
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, OPT_CHECK},
	    {"start-time", required_argument, NULL, OPT_START_TIME},
	    {"create-tables", no_argument, NULL, OPT_CREATE_TABLES},
	    {"preview", no_argument, NULL, OPT_PREVIEW},
	    {"list-plugins", no_argument, NULL, OPT_LIST_PLUGINS},
	    {"plugin-help", required_argument, NULL, OPT_PLUGIN_HELP},
	    {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
	    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	    {"resync", no_argument, NULL, OPT_RESYNC},
	    {"status", no_argument, NULL, OPT_STATUS},
	    {"drop", no_argument, NULL, OPT_DROP},
	    {"man-ini", no_argument, NULL, OPT_MAN_INI},
	    {"yes", no_argument, NULL, OPT_YES},
	    {"verify", no_argument, NULL, OPT_VERIFY},
	    {"repair", no_argument, NULL, OPT_REPAIR},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *config = NULL, *plugin_dir = NULL, *plugin_help = NULL;
	const char *start_time = NULL;
	int64_t start_us = 0;
	bool check = false, list = false, preview = false, create = false;
	bool resync = false, status = false, drop = false, yes = false;
	bool man_ini = false, verify = false, repair = false;
	bool supported = false;
	strbuf errors = {0};
	sigset_t sigs;
	monitor *mon = NULL;
	job *j;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case OPT_CHECK: check = true; break;
		case OPT_START_TIME: start_time = optarg; break;
		case OPT_CREATE_TABLES: create = true; break;
		case OPT_RESYNC: resync = true; break;
		case OPT_STATUS: status = true; break;
		case OPT_DROP: drop = true; break;
		case OPT_MAN_INI: man_ini = true; break; /* for make */
		case OPT_YES: yes = true; break;
		case OPT_VERIFY: verify = true; break;
		case OPT_REPAIR: repair = true; break;
		case OPT_PREVIEW: preview = true; break;
		case OPT_LIST_PLUGINS: list = true; break;
		case OPT_PLUGIN_HELP: plugin_help = optarg; break;
		case OPT_PLUGIN_DIR: plugin_dir = optarg; break;
		case OPT_LOG_LEVEL: {
			syncd_log_level level;
			if (!log_parse_level(optarg, &level)) {
				fprintf(stderr,
				        "syncd: --log-level %s: use error, "
				        "warning, "
				        "info or debug\n",
				        optarg);
				return EXIT_USAGE;
			}
			log_set_level(level);
			break;
		}
		case OPT_VERSION:
			printf("syncd %s (plugin ABI %d.%d)\n", PACKAGE_VERSION,
			       SYNCD_ABI_MAJOR, SYNCD_ABI_MINOR);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc && !verify && !resync) {
		fprintf(stderr, "syncd: unexpected argument \"%s\"\n",
		        argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	if (start_time) {
		char err[512], t1[64], t2[64];
		int64_t now = wall_ms() * 1000;
		if (!rewind_parse_time(start_time, now, &start_us, err,
		                       sizeof err)) {
			fprintf(stderr, "syncd: --start-time: %s\n", err);
			return EXIT_USAGE;
		}
		if (start_us > now + 1000000) {
			fprintf(stderr,
			        "syncd: --start-time: %s is in the future (it "
			        "is %s now)\n",
			        rewind_format(start_us, t1, sizeof t1),
			        rewind_format(now, t2, sizeof t2));
			return EXIT_USAGE;
		}
	}

	loader_init(plugin_dir);
	if (man_ini) {
		rc = manpage_ini(stdout);
		loader_shutdown();
		return rc;
	}
	if (list) {
		rc = cmd_list_plugins();
		loader_shutdown();
		return rc;
	}
	if (plugin_help) {
		rc = cmd_plugin_help(plugin_help);
		loader_shutdown();
		return rc;
	}
	if (!config) {
		fprintf(stderr, "syncd: no job file; run syncd -c JOB.ini (see "
		                "syncd --help)\n");
		loader_shutdown();
		return EXIT_USAGE;
	}

	/* SIGINT/SIGTERM/SIGHUP (a closed terminal; a reload is not
	 * supported: syncd stops cleanly, and the job file is read again at
	 * the next start) are taken by the main thread with sigtimedwait; every
	 * thread started from here inherits the mask. A closed pipe is an
	 * error to report, not a reason to die. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	j = job_load(config, &errors);
	if (!j) {
		fputs(errors.data ? errors.data
		                  : "syncd: could not load the job\n",
		      stderr);
		sb_free(&errors);
		loader_shutdown();
		return EXIT_USAGE;
	}
	sb_free(&errors);
	if (resync && (check || preview || create)) {
		fprintf(stderr, "syncd: --resync runs the job; it does not go "
		                "with --check, --preview or --create-tables\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (resync && optind < argc) {
		/* syncd --resync TABLE...: those tables, while streaming */
		if (check || preview || create || status || drop || verify ||
		    start_time) {
			fprintf(stderr, "syncd: --resync TABLE goes with no other "
			                "action\n");
			rc = EXIT_USAGE;
			goto done;
		}
		if (!instance_create_all(j)) {
			rc = EXIT_USAGE;
			goto done;
		}
		rc = live_resync_command(j, argv + optind,
		                         (size_t) (argc - optind), stdout);
		goto done;
	}
	if (resync && !(j->info.full && j->info.incremental)) {
		fprintf(stderr,
		        "syncd: --resync copies the tables again and streams: "
		        "it needs [job] mode = full+incremental (%s has %s)\n",
		        config, j->info.full ? "full" : "incremental");
		rc = EXIT_USAGE;
		goto done;
	}
	if (status && (check || preview || create || resync || drop)) {
		fprintf(stderr, "syncd: --status only reads the job's state; "
		                "it goes with no other action\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (status) {
		rc = monitor_status_command(j, stdout);
		goto done;
	}
	if (yes && !drop) {
		fprintf(stderr, "syncd: --yes confirms --drop; it does nothing "
		                "alone\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (drop && (check || preview || create || resync)) {
		fprintf(stderr, "syncd: --drop retires the job; it goes with "
		                "no other action but --yes\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (start_time && (check || preview || create || resync || drop)) {
		fprintf(stderr, "syncd: --start-time runs the job from a past "
		                "time; it does not go with --check, --preview, "
		                "--create-tables, --resync or --drop\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (start_time && !j->info.incremental) {
		fprintf(stderr,
		        "syncd: --start-time replays the stream from a past "
		        "time: it needs [job] mode = incremental or "
		        "full+incremental (%s has full)\n",
		        config);
		rc = EXIT_USAGE;
		goto done;
	}
	if (start_time) {
		char t1[64];
		j->start_time = start_us;
		j->start_time_text = start_time;
		log_info("--start-time %s: replaying from %s", start_time,
		         rewind_format(j->start_time, t1, sizeof t1));
	}
	if (repair && !verify) {
		fprintf(stderr, "syncd: --repair goes with --verify\n");
		rc = EXIT_USAGE;
		goto done;
	}
	if (verify && (check || preview || create || resync || drop || status ||
	               start_time)) {
		fprintf(stderr, "syncd: --verify compares the tables; it goes "
		                "with table names and --repair only\n");
		rc = EXIT_USAGE;
		goto done;
	}
	j->resync = resync;
	if (!instance_create_all(j)) {
		rc = EXIT_USAGE;
		goto done;
	}
	if (preview) {
		rc = prepare_preview(j, stdout) == 0 ? 0 : EXIT_JOB_FAILED;
		goto done;
	}
	if (drop) {
		rc = retire_job(j, yes, stdout);
		goto done;
	}
	if (verify) {
		rc = verify_job(j, argv + optind, (size_t) (argc - optind),
		                repair, stdout);
		goto done;
	}
	if (create) {
		bool ok = prepare_tables(j, SYNCD_PREPARE_CREATE, &supported) ==
		          JOB_PREPARED;
		if (!supported) {
			log_error(
			    "%s cannot create tables (its sink plugin "
			    "has no prepare_table operation, or the source "
			    "cannot list its tables)",
			    "[sink]");
			ok = false;
		}
		rc = ok ? 0 : EXIT_JOB_FAILED;
		goto done;
	}
	if (check) {
		bool ok = instance_check_all(j);
		if (!monitor_precheck(j))
			ok = false;
		if (prepare_tables(j, SYNCD_PREPARE_CHECK, &supported) !=
		    JOB_PREPARED)
			ok = false;
		if (ok) {
			log_info("all pre-checks passed");
			rc = 0;
		} else {
			log_error("pre-checks failed; fix what is listed above "
			          "and run "
			          "syncd --check again");
			rc = EXIT_PRECHECK;
		}
		goto done;
	}
	/* the endpoint answers from here on, "starting" while tables are
	 * prepared */
	mon = monitor_start(j);
	if (!mon) {
		rc = EXIT_JOB_FAILED;
		goto done;
	}
	/* target tables: created when missing (if the sink is configured
	 * to), refused early when they cannot take the rows */
	switch (prepare_tables(j, SYNCD_PREPARE_START, &supported)) {
	case JOB_PREPARED: break;
	case JOB_PREPARE_SOURCE:
		log_error("the job cannot start: the source could not be read "
		          "(the error above says why; syncd --check tests "
		          "the connection and its rights)");
		rc = EXIT_JOB_FAILED;
		goto done;
	case JOB_PREPARE_TABLES:
		log_error("the job cannot start: some tables cannot be synced "
		          "as they are (see above; syncd --check lists every "
		          "problem)");
		rc = EXIT_JOB_FAILED;
		goto done;
	}
	rc = run_with_retry(j);
done:
	monitor_stop(mon);
	job_free(j);
	plugerr_clear();
	log_clear_secrets();
	loader_shutdown();
	return rc;
}
