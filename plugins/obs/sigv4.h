/*
 * sigv4.h - the parts of AWS Signature Version 4 the obs archiver computes
 * itself: the payload's hash (x-amz-content-sha256), the canonical URI
 * encoding of an object key, and the scope libcurl signs with. libcurl
 * (CURLOPT_AWS_SIGV4) builds the canonical request, the string to sign and
 * the signature from them. Pure functions.
 */
#ifndef SYNCD_OBS_SIGV4_H
#define SYNCD_OBS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

/* SHA-256 of the empty payload (GET, HEAD), in hex. */
#define SIGV4_EMPTY_SHA256                                                     \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Room for a hash in hex, with its NUL. */
#define SIGV4_HASH_SIZE 65

/* The SHA-256 of data[0..len) in lower-case hex into out; false when
 * OpenSSL could not compute it. */
bool sigv4_payload_hash(const char *data, size_t len,
                        char out[SIGV4_HASH_SIZE]);

/* The URI encoding of an object key (RFC 3986 unreserved characters and
 * '/' kept), as Signature Version 4 wants it; malloc'd, NULL when out of
 * memory. */
char *sigv4_encode_key(const char *key);

/* libcurl's CURLOPT_AWS_SIGV4 provider for S3 in region:
 * "aws:amz:REGION:s3"; malloc'd, NULL when out of memory. */
char *sigv4_provider(const char *region);

#endif
