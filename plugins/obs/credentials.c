/*
 * credentials.c - the obs archiver's access key (see credentials.h).
 */
#define _GNU_SOURCE /* asprintf, explicit_bzero */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "credentials.h"

static syncd_status
obs_credentials_oom(const syncd_host *host)
{
	host->set_error(host, NULL, "out of memory");
	return SYNCD_FATAL;
}

static char *
obs_trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/* Reads the key file path into c (whose key_id, secret and token are
 * NULL); on failure the reason goes to err. *st is what fstat said of the
 * file read (zeroed when it could not be opened). */
static syncd_status
obs_key_file(obs_credentials *c, const char *path, struct stat *st, char *err,
             size_t errsize)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	syncd_status rc = SYNCD_FATAL;

	memset(st, 0, sizeof *st);
	if (!f) {
		snprintf(err, errsize,
		         "could not open [archiver] credentials_file %s: %s",
		         path, strerror(errno));
		return SYNCD_FATAL;
	}
	if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode)) {
		snprintf(err, errsize,
		         "[archiver] credentials_file %s is not a regular file",
		         path);
		goto done;
	}
	if (st->st_mode & S_IRWXO) {
		snprintf(
		    err, errsize,
		    "[archiver] credentials_file %s is open to other users "
		    "(mode %03o); chmod 600 it",
		    path, (unsigned) (st->st_mode & 0777));
		goto done;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s = obs_trim(line), *eq = strchr(s, '='), *k, *v;
		char **to = NULL;
		size_t vl;

		if (!eq || *s == '#' || *s == ';' || *s == '[')
			continue;
		*eq = '\0';
		k = obs_trim(s);
		v = obs_trim(eq + 1);
		vl = strlen(v);
		if (vl >= 2 && (*v == '"' || *v == '\'') && v[vl - 1] == *v) {
			v[vl - 1] = '\0';
			v++;
		}
		if (strcmp(k, "access_key_id") == 0 ||
		    strcmp(k, "aws_access_key_id") == 0)
			to = &c->key_id;
		else if (strcmp(k, "secret_access_key") == 0 ||
		         strcmp(k, "aws_secret_access_key") == 0)
			to = &c->secret;
		else if (strcmp(k, "security_token") == 0 ||
		         strcmp(k, "aws_session_token") == 0)
			to = &c->token;
		if (to && !*to && *v)
			*to = strdup(v);
	}
	if (!c->key_id || !c->secret) {
		snprintf(
		    err, errsize,
		    "[archiver] credentials_file %s has no %s line; write "
		    "access_key_id = ... and secret_access_key = ... lines",
		    path, !c->key_id ? "access_key_id" : "secret_access_key");
		goto done;
	}
	rc = SYNCD_OK;
done:
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	return rc;
}

/* Where credentials read from the file path came from, for messages. */
static char *
obs_file_source(const char *path, bool token)
{
	char *src;

	if (asprintf(&src, "[archiver] credentials_file %s%s", path,
	             token ? " with its security_token" : "") < 0)
		return NULL;
	return src;
}

/* The file is the one read last, unchanged. */
static bool
obs_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

syncd_status
obs_credentials_load(const syncd_host *host, const char *path,
                     const char *bucket, const char *endpoint,
                     obs_credentials *c)
{
	/* key ID, secret, token, where they come from */
	static const char *const env[][4] = {
	    {"OBS_ACCESS_KEY_ID", "OBS_SECRET_ACCESS_KEY", "OBS_SECURITY_TOKEN",
	     "the environment (OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY)"},
	    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	     "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"}};

	for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
		const char *id = getenv(env[i][0]), *sk = getenv(env[i][1]);
		const char *tk = getenv(env[i][2]);
		bool has_id = id && *id, has_sk = sk && *sk;
		if (has_id && has_sk) {
			c->key_id = strdup(id);
			c->secret = strdup(sk);
			if (tk && *tk) {
				c->token = strdup(tk);
				if (asprintf(&c->source,
				             "%s with the security token of %s",
				             env[i][3], env[i][2]) < 0)
					c->source = NULL;
			} else {
				c->source = strdup(env[i][3]);
			}
			return c->key_id && c->secret && c->source &&
			               (c->token || !tk || !*tk)
			           ? SYNCD_OK
			           : obs_credentials_oom(host);
		}
		if (!has_id && !has_sk && tk && *tk) {
			host->set_error(
			    host, NULL,
			    "%s is set but %s and %s are not; a "
			    "security token goes with the temporary "
			    "key pair it was issued with: set all "
			    "three",
			    env[i][2], env[i][0], env[i][1]);
			return SYNCD_FATAL;
		}
		if (has_id != has_sk) {
			host->set_error(host, NULL,
			                "%s is set but %s is not; set both",
			                has_id ? env[i][0] : env[i][1],
			                has_id ? env[i][1] : env[i][0]);
			return SYNCD_FATAL;
		}
	}
	if (path && *path) {
		char err[1024];

		c->path = strdup(path);
		if (!c->path)
			return obs_credentials_oom(host);
		if (obs_key_file(c, path, &c->seen, err, sizeof err) !=
		    SYNCD_OK) {
			host->set_error(host, NULL, "%s", err);
			return SYNCD_FATAL;
		}
		c->source = obs_file_source(path, c->token != NULL);
		return c->source ? SYNCD_OK : obs_credentials_oom(host);
	}
	host->set_error(
	    host, NULL,
	    "no credentials for bucket \"%s\" at %s: set OBS_ACCESS_KEY_ID and "
	    "OBS_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and "
	    "AWS_SECRET_ACCESS_KEY) in syncd's environment, or [archiver] "
	    "credentials_file = a file of mode 600 with access_key_id = ... "
	    "and secret_access_key = ... lines (never the job file)",
	    bucket, endpoint);
	return SYNCD_FATAL;
}

bool
obs_credentials_refresh(const syncd_host *host, obs_credentials *c)
{
	obs_credentials n = {0};
	struct stat now;
	char err[1024];

	if (!c->path || stat(c->path, &now) != 0 ||
	    obs_same_file(&now, &c->seen))
		return false;
	if (obs_key_file(&n, c->path, &now, err, sizeof err) != SYNCD_OK) {
		/* said once per change of the file */
		if (now.st_ino == 0 && stat(c->path, &now) != 0)
			memset(&now, 0, sizeof now);
		c->seen = now;
		SYNCD_LOG_WARNING(host,
		                  "%s; the credentials read before are still "
		                  "used",
		                  err);
		obs_credentials_free(&n);
		return false;
	}
	n.source = obs_file_source(c->path, n.token != NULL);
	if (!n.source) {
		obs_credentials_free(&n);
		return false;
	}
	n.path = c->path;
	n.seen = now;
	c->path = NULL;
	obs_credentials_free(c);
	*c = n;
	SYNCD_LOG_INFO(host,
	               "credentials read again from %s (the file changed)",
	               c->source);
	return true;
}

void
obs_credentials_free(obs_credentials *c)
{
	if (c->secret) {
		explicit_bzero(c->secret, strlen(c->secret));
		free(c->secret);
	}
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->key_id);
	free(c->source);
	free(c->path);
	c->key_id = c->secret = c->token = c->source = c->path = NULL;
}
