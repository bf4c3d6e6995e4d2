/*
 * tests/unit/test_sigv4.c - the pure parts of Signature Version 4 the obs
 * archiver computes itself (plugins/obs/sigv4.h), without any server: the
 * payload hash (x-amz-content-sha256), the URI encoding of object keys and
 * libcurl's provider string; and the S3 error documents it reads
 * (plugins/obs/s3error.h). Every expected value is written out here,
 * taken from the AWS documentation or computed outside syncd (sha256sum,
 * python3 urllib.parse.quote(key, safe='/~')), never from the code tested.
 */
#include "config.h"

#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "s3error.h"
#include "sigv4.h"

/* ---- sigv4_payload_hash ------------------------------------------------- */

static void
check_hash(const char *data, size_t len, const char *want)
{
	char out[SIGV4_HASH_SIZE];

	memset(out, 'X', sizeof out);
	ck_assert_msg(sigv4_payload_hash(data, len, out),
	              "sigv4_payload_hash failed on %zu bytes", len);
	ck_assert_str_eq(out, want);
}

START_TEST(hash_empty)
{
	/* printf '' | sha256sum; also the constant for GET and HEAD */
	check_hash("", 0,
	           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
	           "52b855");
	ck_assert_str_eq(SIGV4_EMPTY_SHA256,
	                 "e3b0c44298fc1c149afbf4c8996fb924"
	                 "27ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(hash_abc)
{
	/* FIPS 180-2 test vector; printf 'abc' | sha256sum */
	check_hash("abc", 3,
	           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
	           "0015ad");
}
END_TEST

START_TEST(hash_aws_example)
{
	/* the PUT Object example of the AWS S3 documentation ("Examples:
	 * Signature Calculations in AWS Signature Version 4"): its
	 * x-amz-content-sha256 header */
	const char *body = "Welcome to Amazon S3.";
	check_hash(body, strlen(body),
	           "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803"
	           "f8b072");
}
END_TEST

START_TEST(hash_exactly_len_bytes)
{
	/* NULs inside are hashed, bytes past len are not:
	 * printf 'a\0b' | sha256sum */
	check_hash("a\0b-not-hashed", 3,
	           "59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce9892"
	           "0a7138");
	check_hash("abcdef", 3,
	           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
	           "0015ad");
}
END_TEST

START_TEST(hash_multi_megabyte)
{
	/* 3 MiB + 7 bytes, byte i = i % 251; computed with
	 * python3 -c 'import sys; n = 3 * 1024 * 1024 + 7;
	 *   sys.stdout.buffer.write(bytes(i % 251 for i in range(n)))'
	 *   | sha256sum */
	size_t n = 3 * 1024 * 1024 + 7;
	char *buf = malloc(n);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char) (unsigned char) (i % 251);
	check_hash(buf, n,
	           "f578a61853ca2f4272dba551bd868420e22302fbb6d6dfc0cc80da1d2c"
	           "7b779f");
	free(buf);
}
END_TEST

/* ---- sigv4_encode_key --------------------------------------------------- */

static void
check_key(const char *key, const char *want)
{
	char *got = sigv4_encode_key(key);
	size_t at = 0;

	ck_assert_ptr_nonnull(got);
	/* on a difference, say where, and show a short piece from there
	 * (keys may hold control bytes and be longer than a Check message) */
	while (got[at] && got[at] == want[at])
		at++;
	ck_assert_msg(got[at] == want[at],
	              "key \"%.40s\" (%zu bytes) encodes differently from "
	              "byte %zu on: got \"%.40s\", want \"%.40s\"",
	              key, strlen(key), at, got + at, want + at);
	free(got);
}

START_TEST(key_unreserved_kept)
{
	/* RFC 3986 unreserved characters and '/' stay as they are */
	check_key("dirty/2026-12-02/part_0001.jsonl",
	          "dirty/2026-12-02/part_0001.jsonl");
	check_key("AZaz09-_.~/x", "AZaz09-_.~/x");
	check_key("a//b/", "a//b/");
	check_key("", "");
}
END_TEST

START_TEST(key_space_plus_percent)
{
	/* space is %20, never '+'; '+' and '%' themselves are encoded */
	check_key("a b+c", "a%20b%2Bc");
	check_key("100%", "100%25");
	check_key("%20", "%2520");
	check_key("!*'();:@&=+$,?#[]",
	          "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%23%5B%5D");
}
END_TEST

START_TEST(key_utf8_upper_hex)
{
	/* each UTF-8 byte as %XX with upper-case hex digits */
	check_key("donn\xc3\xa9"
	          "es/\xc3\xa9t\xc3\xa9.jsonl",
	          "donn%C3%A9es/%C3%A9t%C3%A9.jsonl");
	check_key("\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
	          "%E6%97%A5%E6%9C%AC/%F0%9F%98%80");
}
END_TEST

START_TEST(key_every_byte)
{
	/* bytes 1..255; python3: quote(bytes(range(1, 256)), safe='/~') */
	char key[256];

	for (int i = 1; i < 256; i++)
		key[i - 1] = (char) (unsigned char) i;
	key[255] = '\0';
	check_key(key, "%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10"
	               "%11%12%13%14%15%16%17%18%19%1A%1B%1C%1D%1E%1F%20"
	               "%21%22%23%24%25%26%27%28%29%2A%2B%2C-./0"
	               "123456789%3A%3B%3C%3D%3E%3F%40"
	               "ABCDEFGHIJKLMNOP"
	               "QRSTUVWXYZ%5B%5C%5D%5E_%60"
	               "abcdefghijklmnop"
	               "qrstuvwxyz%7B%7C%7D~%7F%80"
	               "%81%82%83%84%85%86%87%88%89%8A%8B%8C%8D%8E%8F%90"
	               "%91%92%93%94%95%96%97%98%99%9A%9B%9C%9D%9E%9F%A0"
	               "%A1%A2%A3%A4%A5%A6%A7%A8%A9%AA%AB%AC%AD%AE%AF%B0"
	               "%B1%B2%B3%B4%B5%B6%B7%B8%B9%BA%BB%BC%BD%BE%BF%C0"
	               "%C1%C2%C3%C4%C5%C6%C7%C8%C9%CA%CB%CC%CD%CE%CF%D0"
	               "%D1%D2%D3%D4%D5%D6%D7%D8%D9%DA%DB%DC%DD%DE%DF%E0"
	               "%E1%E2%E3%E4%E5%E6%E7%E8%E9%EA%EB%EC%ED%EE%EF%F0"
	               "%F1%F2%F3%F4%F5%F6%F7%F8%F9%FA%FB%FC%FD%FE%FF");
}
END_TEST

START_TEST(key_long)
{
	/* a key of 1024 bytes that all need encoding: three times longer */
	char key[1025], want[3 * 1024 + 1];

	memset(key, ' ', 1024);
	key[1024] = '\0';
	for (int i = 0; i < 1024; i++)
		memcpy(want + 3 * i, "%20", 3);
	want[3 * 1024] = '\0';
	check_key(key, want);
}
END_TEST

/* ---- sigv4_provider ----------------------------------------------------- */

START_TEST(provider_region)
{
	/* libcurl CURLOPT_AWS_SIGV4: "provider1:provider2:region:service" */
	char *p = sigv4_provider("eu-west-1");

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "aws:amz:eu-west-1:s3");
	free(p);
	p = sigv4_provider("cn-north-4");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "aws:amz:cn-north-4:s3");
	free(p);
}
END_TEST

START_TEST(provider_empty_region)
{
	/* an empty region stays empty (obs.c never passes one: it falls back
	 * to the endpoint's region first) */
	char *p = sigv4_provider("");

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "aws:amz::s3");
	free(p);
	/* no region at all reads as an empty one */
	p = sigv4_provider(NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "aws:amz::s3");
	free(p);
}
END_TEST

/* ---- s3_error_parse ----------------------------------------------------- */

static bool
parse(const char *doc, char *code, size_t cs, char *msg, size_t ms)
{
	return s3_error_parse(doc, strlen(doc), code, cs, msg, ms);
}

START_TEST(error_aws_document)
{
	/* the shape of AWS's documented error response ("Error responses",
	 * Amazon S3 API reference), namespace and declaration included */
	const char *doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	    "  <Code>NoSuchKey</Code>\n"
	    "  <Message>The resource you requested does not exist.</Message>\n"
	    "  <Resource>/mybucket/myfoto.jpg</Resource>\n"
	    "  <RequestId>4442587FB7D0A2F9</RequestId>\n"
	    "</Error>";
	char code[64], msg[256];

	ck_assert(parse(doc, code, sizeof code, msg, sizeof msg));
	ck_assert_str_eq(code, "NoSuchKey");
	/* the final period goes: the message is embedded in a sentence */
	ck_assert_str_eq(msg, "The resource you requested does not exist");
}
END_TEST

START_TEST(error_entities_and_order)
{
	/* entities decoded, Message before Code, CDATA read; Token-0 (AWS
	 * echoes the refused token there) is not read */
	const char *doc = "<Error><Message>bucket &quot;a&amp;b&quot; "
	                  "<![CDATA[<is>]]> gone</Message><Token-0>SECRET-TOKEN"
	                  "</Token-0><Code>InvalidToken</Code></Error>";
	char code[64], msg[256];

	ck_assert(parse(doc, code, sizeof code, msg, sizeof msg));
	ck_assert_str_eq(code, "InvalidToken");
	ck_assert_str_eq(msg, "bucket \"a&b\" <is> gone");
	ck_assert_ptr_null(strstr(msg, "SECRET"));
	ck_assert_ptr_null(strstr(code, "SECRET"));
}
END_TEST

START_TEST(error_not_a_document)
{
	char code[64] = "x", msg[256] = "x";

	/* HTML of a proxy, a body cut short, another root, nothing */
	ck_assert(!parse("<html><body>502 Bad Gateway</body></html>", code,
	                 sizeof code, msg, sizeof msg));
	ck_assert_str_eq(code, "");
	ck_assert_str_eq(msg, "");
	ck_assert(!parse("<Error><Code>NoSuchBucket</Code><Mess", code,
	                 sizeof code, msg, sizeof msg));
	ck_assert_str_eq(code, "");
	ck_assert(!parse("<ListBucketResult><Code>x</Code></ListBucketResult>",
	                 code, sizeof code, msg, sizeof msg));
	ck_assert(!parse("", code, sizeof code, msg, sizeof msg));
	ck_assert(!s3_error_parse(NULL, 0, code, sizeof code, msg, sizeof msg));
	/* an external entity is never fetched nor expanded */
	ck_assert(parse("<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/"
	                "passwd\">]><Error><Code>A</Code><Message>&x;"
	                "</Message></Error>",
	                code, sizeof code, msg, sizeof msg) ||
	          *code == '\0');
	ck_assert_ptr_null(strstr(msg, "root:"));
}
END_TEST

START_TEST(error_control_and_size)
{
	/* newlines become spaces; a long message is cut on a character */
	char code[8], msg[8];

	ck_assert(parse("<Error><Code>Slow\nDown</Code>"
	                "<Message>ab\xc3\xa9\xc3\xa9\xc3\xa9</Message></Error>",
	                code, sizeof code, msg, sizeof msg));
	ck_assert_str_eq(code, "Slow Do");
	/* "ab" + two e-acute is 6 bytes; the third does not fit in 7 */
	ck_assert_str_eq(msg, "ab\xc3\xa9\xc3\xa9");
}
END_TEST

Suite *
sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TCase *hash = tcase_create("payload_hash");
	TCase *key = tcase_create("encode_key");
	TCase *prov = tcase_create("provider");
	TCase *err = tcase_create("error_document");

	tcase_add_test(hash, hash_empty);
	tcase_add_test(hash, hash_abc);
	tcase_add_test(hash, hash_aws_example);
	tcase_add_test(hash, hash_exactly_len_bytes);
	tcase_add_test(hash, hash_multi_megabyte);
	suite_add_tcase(s, hash);

	tcase_add_test(key, key_unreserved_kept);
	tcase_add_test(key, key_space_plus_percent);
	tcase_add_test(key, key_utf8_upper_hex);
	tcase_add_test(key, key_every_byte);
	tcase_add_test(key, key_long);
	suite_add_tcase(s, key);

	tcase_add_test(prov, provider_region);
	tcase_add_test(prov, provider_empty_region);
	suite_add_tcase(s, prov);

	tcase_add_test(err, error_aws_document);
	tcase_add_test(err, error_entities_and_order);
	tcase_add_test(err, error_not_a_document);
	tcase_add_test(err, error_control_and_size);
	suite_add_tcase(s, err);
	return s;
}
