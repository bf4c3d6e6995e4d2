/*
 * tests/unit/main.c - runs every Check suite; one per area of the core.
 */
#include "config.h"

#include "tests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *
test_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr,
		        "%s is not set; run the tests with make check\n", name);
		exit(99); /* automake: hard error */
	}
	return v;
}

char *
test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = malloc(4096);
	snprintf(dir, 4096, "%s/syncd-test-XXXXXX",
	         base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(99);
	}
	return dir;
}

void
test_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			test_rmdir(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

char *
test_write_file(const char *dir, const char *name, const char *text)
{
	char *path = malloc(4096);
	FILE *f;

	snprintf(path, 4096, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(99);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

int
test_run_syncd(char **err, const char *const *args)
{
	const char *syncd = test_env("SYNCD");
	int pipefd[2], status;
	pid_t pid;
	char *buf = NULL;
	size_t len = 0;

	if (pipe(pipefd) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		const char *argv[64];
		int n = 0;
		argv[n++] = syncd;
		for (int i = 0; args[i] && n < 63; i++)
			argv[n++] = args[i];
		argv[n] = NULL;
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(syncd, (char *const *) argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char chunk[4096];
		ssize_t r = read(pipefd[0], chunk, sizeof chunk);
		if (r <= 0)
			break;
		buf = realloc(buf, len + (size_t) r + 1);
		memcpy(buf + len, chunk, (size_t) r);
		len += (size_t) r;
		buf[len] = '\0';
	}
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	if (!buf)
		buf = strdup("");
	if (err)
		*err = buf;
	else
		free(buf);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -WTERMSIG(status);
}

int
main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_add_suite(sr, jobfile_suite());
	srunner_add_suite(sr, loader_suite());
	srunner_add_suite(sr, checkpoint_suite());
	srunner_add_suite(sr, conformance_suite());
	srunner_add_suite(sr, pipeline_suite());
	srunner_add_suite(sr, proto_suite());
	srunner_add_suite(sr, dws_suite());
	srunner_add_suite(sr, transforms_suite());
	srunner_add_suite(sr, archivers_suite());
	srunner_add_suite(sr, txbuf_suite());
	srunner_add_suite(sr, display_suite());
	srunner_add_suite(sr, log_suite());
	srunner_add_suite(sr, metrics_suite());
#ifdef SYNCD_TEST_UDF
	srunner_add_suite(sr, udf_suite());
#endif
#ifdef SYNCD_TEST_SIGV4
	srunner_add_suite(sr, sigv4_suite());
#endif
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
