/*
 * sigv4.c - the pure parts of AWS Signature Version 4 the obs archiver
 * computes (see sigv4.h).
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

static void
sigv4_hex(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

bool
sigv4_payload_hash(const char *data, size_t len, char out[SIGV4_HASH_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen * 2 + 1 > SIGV4_HASH_SIZE)
		return false;
	sigv4_hex(md, mdlen, out);
	return true;
}

/* The URI encoding of an object key (RFC 3986 unreserved characters and
 * '/' kept), as Signature Version 4 wants it. */
char *
sigv4_encode_key(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(key) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *) key; *p; p++) {
		if (isalnum(*p) || strchr("-._~/", *p)) {
			*o++ = (char) *p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

char *
sigv4_provider(const char *region)
{
	char *p = NULL;

	if (asprintf(&p, "aws:amz:%s:s3", region ? region : "") < 0)
		return NULL;
	return p;
}
