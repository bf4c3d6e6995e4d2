/*
 * credentials.h - the obs archiver's access key: OBS_ACCESS_KEY_ID /
 * OBS_SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 * from the environment, else the key file credentials_file (mode 600,
 * access_key_id = ... and secret_access_key = ... lines); never the job
 * file. Temporary credentials add their security token: OBS_SECURITY_TOKEN
 * with the OBS_ pair, AWS_SESSION_TOKEN with the AWS_ pair, a
 * security_token = ... (or aws_session_token = ...) line in the key file.
 * The secret and the token are never printed and are wiped when freed.
 * Credentials from the key file are read again when the file changes
 * (obs_credentials_refresh, before each request), so that whatever renews
 * temporary credentials can rewrite it while syncd runs.
 */
#ifndef SYNCD_OBS_CREDENTIALS_H
#define SYNCD_OBS_CREDENTIALS_H

#include <stdbool.h>
#include <sys/stat.h>

#include <syncd/syncd.h>

typedef struct obs_credentials {
	char *key_id;
	char *secret;
	char *token;  /* the security token of temporary credentials, or NULL */
	char *source; /* where they came from, for messages */
	char *path;   /* the key file they came from, or NULL */
	struct stat seen; /* that file when it was read */
} obs_credentials;

/* Fills c (zeroed by the caller) from the environment or the key file
 * path (NULL or empty: none); on failure set_error names the fix, with
 * bucket and endpoint when there are no credentials at all. What c holds
 * is freed with obs_credentials_free() either way. */
syncd_status obs_credentials_load(const syncd_host *host, const char *path,
                                  const char *bucket, const char *endpoint,
                                  obs_credentials *c);
/* When c came from a key file that has changed since it was read (another
 * inode, size, modification or change time): reads it again and, if it
 * holds credentials, replaces c's with them (true), logging that it did;
 * a file that cannot be used now is logged as a warning, once per change,
 * and c's credentials are kept (false). */
bool obs_credentials_refresh(const syncd_host *host, obs_credentials *c);
/* Wipes the secret and the token and frees c's strings. */
void obs_credentials_free(obs_credentials *c);

#endif
