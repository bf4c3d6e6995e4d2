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

static syncd_status
obs_key_file(const syncd_host *host, obs_credentials *c, const char *path)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	syncd_status rc = SYNCD_FATAL;

	if (!f) {
		host->set_error(host, NULL,
		                "could not open [archiver] credentials_file "
		                "%s: %s",
		                path, strerror(errno));
		return SYNCD_FATAL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		host->set_error(host, NULL,
		                "[archiver] credentials_file %s is not a "
		                "regular file",
		                path);
		goto done;
	}
	if (st.st_mode & S_IRWXO) {
		host->set_error(host, NULL,
		                "[archiver] credentials_file %s is open to "
		                "other users (mode %03o); chmod 600 it",
		                path, (unsigned) (st.st_mode & 0777));
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
		host->set_error(
		    host, NULL,
		    "[archiver] credentials_file %s has no %s line; "
		    "write access_key_id = ... and "
		    "secret_access_key = ... lines",
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
			host->set_error(host, NULL,
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
		syncd_status st;
		char *src;

		if (asprintf(&c->source, "[archiver] credentials_file %s",
		             path) < 0) {
			c->source = NULL;
			return obs_credentials_oom(host);
		}
		st = obs_key_file(host, c, path);
		if (st == SYNCD_OK && c->token) {
			if (asprintf(&src, "%s with its security_token",
			             c->source) < 0)
				return obs_credentials_oom(host);
			free(c->source);
			c->source = src;
		}
		return st;
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
	c->key_id = c->secret = c->token = c->source = NULL;
}
