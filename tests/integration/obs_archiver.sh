#!/bin/bash
# The obs archiver against a real S3-compatible server that checks AWS
# Signature V4 signatures: s3rver (the @20minutes fork of s3rver, whose V4
# check the original 3.x lacks) from npm, installed into a cache outside the
# tree and run on loopback by this test, over http and over https with a
# certificate of its own.
#  - Dirty rows of a DWS sink (varchar(5), a CHECK the source lacks) go to
#    the bucket as objects PREFIX/JOB/WORKER/TIME-SEQ.jsonl; the objects,
#    listed and read back with curl's own SigV4, hold exactly the dirty rows
#    (once syncd has stopped; rows past rotate.size are uploaded by write()).
#  - A wrong secret fails the job (exit 1) naming SignatureDoesNotMatch,
#    endpoint and bucket, with the refused row's LSN unconfirmed and the
#    secret nowhere in the log; --check names InvalidAccessKeyId and
#    NoSuchBucket; missing or world-readable credentials stop the start.
#  - A stalled server is tried again, and the rows still arrive.
#  - https: the certificate is checked by default; ca_file trusts it.
#  - Temporary credentials: in front of s3rver (which checks the signature
#    over every signed header but knows no tokens), a small proxy plays the
#    part of an endpoint that wants a security token: no token, 403
#    InvalidToken; a wrong one, 400 ExpiredToken with the token echoed in
#    <Token-0> as AWS does; an unsigned one, refused. The token from
#    AWS_SESSION_TOKEN or the key file's security_token is sent as
#    X-Amz-Security-Token, signed, and objects arrive; a key file renewed
#    while the job runs is read again (one others may read is refused, the
#    credentials before kept); the S3 Code and Message read from the error
#    documents (libxml2) name the fix; no token is in a log.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
# loopback only, whatever the environment says about proxies
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
	OBS_ACCESS_KEY_ID OBS_SECRET_ACCESS_KEY AWS_ACCESS_KEY_ID \
	AWS_SECRET_ACCESS_KEY OBS_SECURITY_TOKEN AWS_SESSION_TOKEN

# ---- s3rver ---------------------------------------------------------------
S3RVER_PKG=@20minutes/s3rver@4.0.4
S3RVER_DIR=${SYNCD_TEST_CACHE:-${HOME:-/tmp}/.cache/syncd-test}/s3rver-4.0.4
command -v node >/dev/null && command -v npm >/dev/null ||
	it_fail "node and npm are needed to run s3rver (scripts/deps test installs them)"
mkdir -p "$S3RVER_DIR"
(
	flock 9
	[ -f "$S3RVER_DIR/node_modules/@20minutes/s3rver/lib/signature/v4.js" ] && exit 0
	npm install --no-audit --no-fund --prefix "$S3RVER_DIR" "$S3RVER_PKG" \
		>"$W/npm.log" 2>&1
) 9>"$S3RVER_DIR.lock" ||
	it_fail "could not install $S3RVER_PKG from npm into $S3RVER_DIR: $(tail -n 20 "$W/npm.log")"

KEY_ID=SYNCDTESTKEY
SECRET=syncd-test-secret-9f2c41
WRONG=wrong-secret-77ab13
TOKEN=syncd-test-session-token-3d8e5a
WRONG_TOKEN=syncd-test-stale-token-c04b71
TOKEN2=syncd-test-renewed-token-91fa27
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$W/tls.key" \
	-out "$W/tls.crt" >/dev/null 2>&1 || it_fail "openssl could not make a certificate"
cat >"$W/s3rver.js" <<'JS'
// s3rver on 127.0.0.1 (http and https, ports chosen by the kernel) with one
// key pair; the default S3RVER key is revoked
const [dir, data, keyId, secret, tlsKey, tlsCert] = process.argv.slice(2);
const fs = require('fs');
const S3rver = require(dir + '/node_modules/@20minutes/s3rver');
const Account = require(dir + '/node_modules/@20minutes/s3rver/lib/models/account');
Account.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
Account.DUMMY_ACCOUNT.createKeyPair(keyId, secret);
const common = { address: '127.0.0.1', port: 0, silent: false,
	vhostBuckets: false, configureBuckets: [{ name: 'dirty', configs: [] }] };
(async () => {
	const plain = await new S3rver({ ...common, directory: data + '/http' }).run();
	const tls = await new S3rver({ ...common, directory: data + '/https',
		key: fs.readFileSync(tlsKey), cert: fs.readFileSync(tlsCert) }).run();
	console.log('listening http ' + plain.port + ' https ' + tls.port);
})().catch((e) => { console.error(e); process.exit(1); });
JS
node "$W/s3rver.js" "$S3RVER_DIR" "$W/s3" "$KEY_ID" "$SECRET" "$W/tls.key" \
	"$W/tls.crt" >"$W/s3rver.log" 2>&1 &
S3_PID=$!
obs_cleanup() {
	rc=$?
	# a syncd still running after a failure would try its uploads for
	# half a minute
	[ -n "${SYNCD_PID:-}" ] && kill -KILL "$SYNCD_PID" 2>/dev/null || true
	kill "$S3_PID" ${STS_PID:-} 2>/dev/null || true
	wait "$S3_PID" ${STS_PID:-} 2>/dev/null || true
	set +e
	(exit $rc) # it_cleanup takes the exit status from $?
	it_cleanup
}
trap obs_cleanup EXIT
for _ in $(seq 1 100); do
	grep -q '^listening' "$W/s3rver.log" && break
	kill -0 "$S3_PID" 2>/dev/null || it_fail "s3rver did not start: $(cat "$W/s3rver.log")"
	sleep 0.1
done
read -r _ _ HTTP_PORT _ HTTPS_PORT < <(grep '^listening' "$W/s3rver.log") ||
	it_fail "s3rver did not start: $(cat "$W/s3rver.log")"
it_log "s3rver on 127.0.0.1:$HTTP_PORT (http) and :$HTTPS_PORT (https)"

# s3 GET PATH-AND-QUERY: a request signed by curl's own SigV4
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3() {
	curl -sS --fail-with-body --aws-sigv4 aws:amz:us-east-1:s3 \
		--user "$KEY_ID:$SECRET" -H "x-amz-content-sha256: $EMPTY_SHA" \
		"http://127.0.0.1:$HTTP_PORT$1"
}
# the signature is checked: a wrong secret is refused by the server itself
s3 "/dirty?max-keys=1" >/dev/null || it_fail "s3rver refuses the right key"
curl -sS --aws-sigv4 aws:amz:us-east-1:s3 --user "$KEY_ID:$WRONG" \
	-H "x-amz-content-sha256: $EMPTY_SHA" \
	"http://127.0.0.1:$HTTP_PORT/dirty?max-keys=1" | grep -q SignatureDoesNotMatch ||
	it_fail "s3rver does not check signatures"

# ---- the job --------------------------------------------------------------
pg_start src
pg_start dst
printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$KEY_ID" "$SECRET" >"$W/obs.key"
chmod 600 "$W/obs.key"

job() { # job NAME [ARCHIVER-KEYS...]
	local jn=$1
	shift
	cat >"$W/$jn.ini" <<INI
[job]
name = $jn
mode = incremental
state_dir = $W/state
[source]
conninfo = host=127.0.0.1 port=$src_PORT user=postgres dbname=$jn
slot.flush.delay.time = 0
status.interval = 200ms
heartbeat.interval = 1s
[sink]
write_mode = upsert
conninfo = host=127.0.0.1 port=$dst_PORT user=postgres dbname=$jn
target.schema = public
batch.interval = 300ms
sink.keyby.mode = pk
[dirty]
enabled = true
threshold = 10
policy = archive
archiver = obs
[archiver]
endpoint = http://127.0.0.1:$HTTP_PORT
bucket = dirty
INI
	printf '%s\n' "$@" >>"$W/$jn.ini"
	psql_on src -c "create database $jn" >/dev/null
	psql_on dst -c "create database $jn" >/dev/null
	DB=$jn psql_on src -c "create table t (id int primary key, v text, n int)" >/dev/null
	DB=$jn psql_on dst -c "create table t (id int primary key, v varchar(5), n int check (n >= 0))" >/dev/null
}
lsn() { DB=$1 psql_on src -Atc "select pg_current_wal_lsn()"; }
# objects PREFIX: the keys of the objects under PREFIX/ (ListObjectsV2), one
# a line, in $W/keys
objects() {
	s3 "/dirty?list-type=2&prefix=$1%2F" >"$W/list.xml" || it_fail "list: $(cat "$W/list.xml")"
	grep -o '<Key>[^<]*</Key>' "$W/list.xml" | sed 's/<[^>]*>//g' >"$W/keys" || true
}
# records: the records of the objects in $W/keys, in $W/records
records() {
	: >"$W/records"
	while read -r key; do
		s3 "/dirty/$key" >"$W/object" || it_fail "get $key: $(cat "$W/object")"
		cat "$W/object" >>"$W/records"
	done <"$W/keys"
}
no_secret() { # no_secret LOG
	! grep -qF -e "$SECRET" -e "$WRONG" -e "$TOKEN" -e "$WRONG_TOKEN" -e "$TOKEN2" "$1" ||
		it_fail "a secret is in $1"
}

job obs1 "credentials_file = $W/obs.key" "prefix = /tests/"
# the pre-checks list the bucket with the key file's credentials
"$SYNCD" --plugin-dir "$PLUGIN_DIR" --check -c "$W/obs1.ini" >"$W/check1.log" 2>&1 ||
	it_fail "--check failed: $(cat "$W/check1.log")"
it_assert_contains "$W/check1.log" "bucket \"dirty\" at http://127.0.0.1:$HTTP_PORT answers"
syncd_start "$W/obs1.log" "$W/obs1.ini"
it_assert_contains "$W/obs1.log" "credentials from [archiver] credentials_file $W/obs.key"
DB=obs1 psql_on src -c "insert into t select g, 'ok', g from generate_series(1, 20) g where g not in (5, 12)" >/dev/null
slot_wait src syncd_obs1 "$(lsn obs1)"
DB=obs1 psql_on src >/dev/null <<'SQL'
begin;
insert into t values (5, 'too long', 5), (12, 'ok', -1), (21, 'fine', 21),
	(30, 'ünïcödé "q"', null);
update t set v = 'way too long' where id = 3;
update t set n = n + 100 where id = 4;
commit;
delete from t where id = 20;
SQL
slot_wait src syncd_obs1 "$(lsn obs1)"
# durable before confirmed: the slot has confirmed the refused rows, so
# they are in the bucket already (syncd still runs)
objects tests
records
it_assert_eq 4 "$(wc -l <"$W/records")" "records in the bucket once their LSN is confirmed"
DB=obs1 psql_on src -c "insert into t values (40, 'x', -40)" >/dev/null
slot_wait src syncd_obs1 "$(lsn obs1)"
syncd_stop "$SYNCD_PID" "$W/obs1.log"
no_secret "$W/obs1.log"
got=$(DB=obs1 psql_on dst -Atc "select string_agg(id || ':' || v || ':' || n, ',' order by id) from t where id in (3, 4, 5, 12, 20, 21, 30, 40)")
it_assert_eq "3:ok:3,4:ok:104,21:fine:21" "$got" "rows applied around the dirty ones"

# the objects: listed (ListObjectsV2) and read back
objects tests
[ -s "$W/keys" ] || it_fail "no objects in the bucket: $(cat "$W/list.xml")"
grep -Evx 'tests/obs1/[01]/[0-9]{8}T[0-9]{6}Z-[0-9]+\.jsonl' "$W/keys" &&
	it_fail "object keys not PREFIX/JOB/WORKER/TIME-SEQ.jsonl: $(cat "$W/keys")"
: >"$W/obs1.dirty"
while read -r key; do
	s3 "/dirty/$key" >"$W/object" || it_fail "get $key: $(cat "$W/object")"
	worker=$(echo "$key" | cut -d/ -f3)
	jq -e --argjson w "$worker" 'select(.worker != $w or .job != "obs1")' "$W/object" >/dev/null &&
		it_fail "$key holds records of another worker or job: $(cat "$W/object")"
	cat "$W/object" >>"$W/obs1.dirty"
done <"$W/keys"
curl -sS -I --aws-sigv4 aws:amz:us-east-1:s3 --user "$KEY_ID:$SECRET" \
	-H "x-amz-content-sha256: $EMPTY_SHA" \
	"http://127.0.0.1:$HTTP_PORT/dirty/$(head -n 1 "$W/keys")" | grep -qi '^content-type: application/x-ndjson' ||
	it_fail "objects are not application/x-ndjson"
logged=$(grep -c "dirty row [0-9]* of worker" "$W/obs1.log")
it_assert_eq "$logged" "$(wc -l <"$W/obs1.dirty")" "records in the bucket vs dirty rows logged"
recs=$(jq -r '[.op, .key.id, .sqlstate, .database + "/" + .schema + "." + .table, .target_schema + "." + .target_table, .row.v, (.row.n // "NULL")] | map(tostring) | join("|")' "$W/obs1.dirty" | sort)
it_assert_eq 'insert|12|23514|obs1/public.t|public.t|ok|-1
insert|30|22001|obs1/public.t|public.t|ünïcödé "q"|NULL
insert|40|23514|obs1/public.t|public.t|x|-40
insert|5|22001|obs1/public.t|public.t|too long|5
update|3|22001|obs1/public.t|public.t|way too long|3' "$recs" "dirty records in the bucket"
jq -e 'select((.lsn | test("^[0-9A-F]+/[0-9A-F]+$") | not) or (.commit_time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[.][0-9]{6}Z$") | not) or (.message | length) == 0 or (.row | has("n") | not))' "$W/obs1.dirty" >/dev/null &&
	it_fail "a record lacks lsn, commit_time, message or a NULL value: $(cat "$W/obs1.dirty")"
it_pass "dirty rows stored as PREFIX/JOB/WORKER/TIME-SEQ.jsonl objects, read back equal to the rows refused"

# ---- wrong and missing credentials ------------------------------------------
# a row bigger than rotate.size is uploaded by write() itself
job obs2 "rotate.size = 1KB"
OBS_ACCESS_KEY_ID=$KEY_ID OBS_SECRET_ACCESS_KEY=$WRONG syncd_start "$W/obs2.log" "$W/obs2.ini"
DB=obs2 psql_on src -c "insert into t values (1, 'ok', 1)" -c "insert into t values (2, repeat('x', 1200), 2)" >/dev/null
bad=$(lsn obs2)
for _ in $(seq 1 150); do kill -0 "$SYNCD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SYNCD_PID" 2>/dev/null && {
	kill -KILL "$SYNCD_PID"
	it_fail "syncd goes on with a wrong secret: $(tail -n 5 "$W/obs2.log")"
}
wait "$SYNCD_PID" && rc=0 || rc=$?
it_assert_eq 1 "$rc" "exit code with a wrong secret"
it_assert_contains "$W/obs2.log" "to bucket \"dirty\" at http://127.0.0.1:$HTTP_PORT: HTTP 403 SignatureDoesNotMatch"
it_assert_contains "$W/obs2.log" "the environment (OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY)"
no_secret "$W/obs2.log"
it_assert_eq t "$(DB=obs2 psql_on src -Atc "select coalesce(confirmed_flush_lsn < '$bad', true) from pg_replication_slots where slot_name = 'syncd_obs2'")" "the refused row's LSN unconfirmed"

# --check: an unknown key ID, a missing bucket
rc=0
AWS_ACCESS_KEY_ID=NOSUCHKEY AWS_SECRET_ACCESS_KEY=$WRONG "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	--check -c "$W/obs2.ini" >"$W/check2.log" 2>&1 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with an unknown key ID"
it_assert_contains "$W/check2.log" "bucket \"dirty\" at http://127.0.0.1:$HTTP_PORT: HTTP 403 InvalidAccessKeyId"
no_secret "$W/check2.log"
sed 's/^bucket = dirty$/bucket = nosuch/' "$W/obs2.ini" >"$W/nosuch.ini"
rc=0
OBS_ACCESS_KEY_ID=$KEY_ID OBS_SECRET_ACCESS_KEY=$SECRET "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	--check -c "$W/nosuch.ini" >"$W/check3.log" 2>&1 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with a missing bucket"
it_assert_contains "$W/check3.log" "HTTP 404 NoSuchBucket"
it_assert_contains "$W/check3.log" "create the bucket, or fix [archiver] bucket"

# no credentials, or a key file others can read: the job does not start
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/obs2.ini" >"$W/nocred.log" 2>&1 || rc=$?
it_assert_eq 2 "$rc" "exit code without credentials"
it_assert_contains "$W/nocred.log" "no credentials for bucket \"dirty\""
chmod 644 "$W/obs.key"
echo "credentials_file = $W/obs.key" >>"$W/obs2.ini"
rc=0
"$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/obs2.ini" >"$W/open.log" 2>&1 || rc=$?
it_assert_eq 2 "$rc" "exit code with a world-readable key file"
it_assert_contains "$W/open.log" "is open to other users (mode 644); chmod 600 it"
chmod 600 "$W/obs.key"
no_secret "$W/nocred.log"
no_secret "$W/open.log"
it_pass "wrong or missing credentials: clear errors naming the S3 code, no secret logged, nothing confirmed"

# ---- a stalled server: tried again, the rows arrive -------------------------
job obs3 "credentials_file = $W/obs.key" "timeout = 2s" "retries = 5" "prefix = stall" "rotate.size = 1KB"
syncd_start "$W/obs3.log" "$W/obs3.ini"
kill -STOP "$S3_PID"
DB=obs3 psql_on src -c "insert into t values (7, repeat('y', 1200), 7)" >/dev/null
for _ in $(seq 1 100); do grep -q "retry 1 of 5 in 1 s" "$W/obs3.log" && break; sleep 0.1; done
kill -CONT "$S3_PID"
it_assert_contains "$W/obs3.log" "retry 1 of 5 in 1 s"
slot_wait src syncd_obs3 "$(lsn obs3)"
syncd_stop "$SYNCD_PID" "$W/obs3.log"
objects stall
records
it_assert_eq "7 22001" "$(jq -r '[.key.id, .sqlstate] | join(" ")' "$W/records")" "record uploaded after the retry"
it_pass "a stalled endpoint is tried again with backoff and the record arrives"

# ---- https: the certificate is checked by default ---------------------------
https() { # https NAME [KEYS...]: obs2's job with the https endpoint
	local n=$1
	shift
	sed "s|^endpoint = .*|endpoint = https://127.0.0.1:$HTTPS_PORT|" "$W/obs2.ini" |
		grep -v '^credentials_file' >"$W/$n.ini"
	printf '%s\n' "$@" >>"$W/$n.ini"
}
https tls1
rc=0
OBS_ACCESS_KEY_ID=$KEY_ID OBS_SECRET_ACCESS_KEY=$SECRET "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	--check -c "$W/tls1.ini" >"$W/tls1.log" 2>&1 || rc=$?
it_assert_eq 3 "$rc" "--check exit code with an unknown CA"
it_assert_contains "$W/tls1.log" "set [archiver] ca_file to the CA that signed the endpoint's certificate"
https tls2 "ca_file = $W/tls.crt"
OBS_ACCESS_KEY_ID=$KEY_ID OBS_SECRET_ACCESS_KEY=$SECRET "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	--check -c "$W/tls2.ini" >"$W/tls2.log" 2>&1 || it_fail "--check with ca_file: $(cat "$W/tls2.log")"
it_assert_contains "$W/tls2.log" "bucket \"dirty\" at https://127.0.0.1:$HTTPS_PORT answers"
https tls3 "tls.verify = false"
OBS_ACCESS_KEY_ID=$KEY_ID OBS_SECRET_ACCESS_KEY=$SECRET "$SYNCD" --plugin-dir "$PLUGIN_DIR" \
	--check -c "$W/tls3.ini" >"$W/tls3.log" 2>&1 || it_fail "--check with tls.verify = false: $(cat "$W/tls3.log")"
it_assert_contains "$W/tls3.log" "tls.verify = false: the certificate of https://127.0.0.1:$HTTPS_PORT is not checked"
it_pass "https: an unknown CA is refused by default, ca_file trusts it, tls.verify = false warns"

# ---- temporary credentials: a security token -------------------------------
cat >"$W/sts.js" <<'JS'
// An endpoint that wants temporary credentials, in front of s3rver: the
// request must carry X-Amz-Security-Token = the token in TOKEN-FILE, signed (in the
// Authorization's SignedHeaders); then s3rver checks the signature. Every
// request is logged as "METHOD token=none|right|wrong signed=yes|no".
const http = require('http');
const fs = require('fs');
const [target, tokenFile, log] = process.argv.slice(2);
function refuse(res, status, code, msg, given) {
	res.writeHead(status, { 'Content-Type': 'application/xml' });
	res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + code +
		'</Code><Message>' + msg + '</Message>' +
		(given ? '<Token-0>' + given + '</Token-0>' : '') +
		'<RequestId>4442587FB7D0A2F9</RequestId></Error>');
}
const server = http.createServer((req, res) => {
	const token = fs.readFileSync(tokenFile, 'utf8').trim(); // renewed by the test
	const given = req.headers['x-amz-security-token'];
	const m = /SignedHeaders=([^,]*)/.exec(req.headers.authorization || '');
	const signed = m !== null && m[1].split(';').includes('x-amz-security-token');
	fs.appendFileSync(log, req.method + ' token=' +
		(given === undefined ? 'none' : given === token ? 'right' : 'wrong') +
		' signed=' + (signed ? 'yes' : 'no') + '\n');
	if (given === undefined)
		return refuse(res, 403, 'InvalidToken',
			'The provided token is malformed or otherwise invalid.');
	if (given !== token)
		return refuse(res, 400, 'ExpiredToken', 'The provided token has expired.', given);
	if (!signed)
		return refuse(res, 403, 'AccessDenied', 'x-amz-security-token is not signed.');
	const fwd = http.request({ host: '127.0.0.1', port: target, method: req.method,
		path: req.url, headers: req.headers }, (r) => {
		res.writeHead(r.statusCode, r.headers);
		r.pipe(res);
	});
	fwd.on('error', () => { res.writeHead(502); res.end(); });
	req.pipe(fwd);
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
JS
echo "$TOKEN" >"$W/sts.token"
node "$W/sts.js" "$HTTP_PORT" "$W/sts.token" "$W/sts.requests" >"$W/sts.log" 2>&1 &
STS_PID=$!
for _ in $(seq 1 100); do
	grep -q '^listening' "$W/sts.log" && break
	kill -0 "$STS_PID" 2>/dev/null || it_fail "the token proxy did not start: $(cat "$W/sts.log")"
	sleep 0.1
done
read -r _ STS_PORT < <(grep '^listening' "$W/sts.log") ||
	it_fail "the token proxy did not start: $(cat "$W/sts.log")"
sts_job() { # sts_job NAME [KEYS...]: obs2's job through the token proxy
	local n=$1
	shift
	sed "s|^endpoint = .*|endpoint = http://127.0.0.1:$STS_PORT|" "$W/obs2.ini" |
		grep -v '^credentials_file' >"$W/$n.ini"
	printf '%s\n' "$@" >>"$W/$n.ini"
}
check_rc() { # check_rc LOG INI [VAR=VALUE...]: syncd --check's exit code
	local log=$1 ini=$2
	shift 2
	rc=0
	env "$@" "$SYNCD" --plugin-dir "$PLUGIN_DIR" --check -c "$ini" >"$log" 2>&1 || rc=$?
}

# the token from AWS_SESSION_TOKEN: sent, signed, accepted
sts_job sts1
: >"$W/sts.requests"
check_rc "$W/sts1.log" "$W/sts1.ini" AWS_ACCESS_KEY_ID="$KEY_ID" \
	AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$TOKEN"
it_assert_eq 0 "$rc" "--check with a security token: $(cat "$W/sts1.log")"
it_assert_contains "$W/sts1.log" "answers, with the credentials from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) with the security token of AWS_SESSION_TOKEN"
it_assert_eq "GET token=right signed=yes" "$(cat "$W/sts.requests")" "the request --check made"
no_secret "$W/sts1.log"

# a stale token: the Code and Message of the error document, the fix, and
# not the token the server echoed
check_rc "$W/sts2.log" "$W/sts1.ini" AWS_ACCESS_KEY_ID="$KEY_ID" \
	AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$WRONG_TOKEN"
it_assert_eq 3 "$rc" "--check exit code with a stale token"
it_assert_contains "$W/sts2.log" "bucket \"dirty\" at http://127.0.0.1:$STS_PORT: HTTP 400 ExpiredToken: The provided token has expired; the security token was refused or has expired: renew the temporary credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) with the security token of AWS_SESSION_TOKEN"
no_secret "$W/sts2.log"

# temporary keys without their token
check_rc "$W/sts3.log" "$W/sts1.ini" OBS_ACCESS_KEY_ID="$KEY_ID" OBS_SECRET_ACCESS_KEY="$SECRET"
it_assert_eq 3 "$rc" "--check exit code without a token"
it_assert_contains "$W/sts3.log" "HTTP 403 InvalidToken: The provided token is malformed or otherwise invalid; the endpoint wants temporary credentials: give their security token with the key pair, in the environment (OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY)"
# a token without its key pair: refused before any request
rc=0
AWS_SESSION_TOKEN=$TOKEN "$SYNCD" --plugin-dir "$PLUGIN_DIR" -c "$W/sts1.ini" >"$W/sts4.log" 2>&1 || rc=$?
it_assert_eq 2 "$rc" "exit code with a token and no key pair"
it_assert_contains "$W/sts4.log" "AWS_SESSION_TOKEN is set but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not"
no_secret "$W/sts4.log"

# the key file's security_token, in a job: the dirty row arrives
printf 'access_key_id = %s\nsecret_access_key = %s\nsecurity_token = %s\n' \
	"$KEY_ID" "$SECRET" "$TOKEN" >"$W/sts.key"
chmod 600 "$W/sts.key"
job obs5 "credentials_file = $W/sts.key" "prefix = sts"
sed -i "s|^endpoint = .*|endpoint = http://127.0.0.1:$STS_PORT|" "$W/obs5.ini"
: >"$W/sts.requests"
syncd_start "$W/obs5.log" "$W/obs5.ini"
it_assert_contains "$W/obs5.log" "credentials from [archiver] credentials_file $W/sts.key with its security_token"
DB=obs5 psql_on src -c "insert into t values (1, 'ok', 1), (2, 'too long', 2)" >/dev/null
slot_wait src syncd_obs5 "$(lsn obs5)"
objects sts
records
it_assert_eq "2 22001" "$(jq -r '[.key.id, .sqlstate] | join(" ")' "$W/records")" "record uploaded with the token"
# the credentials renewed while the job runs: the endpoint now wants
# TOKEN2, and the key file is replaced by one holding it
echo "$TOKEN2" >"$W/sts.token"
printf 'access_key_id = %s\nsecret_access_key = %s\nsecurity_token = %s\n' \
	"$KEY_ID" "$SECRET" "$TOKEN2" >"$W/sts.key.new"
chmod 600 "$W/sts.key.new"
mv "$W/sts.key.new" "$W/sts.key"
DB=obs5 psql_on src -c "insert into t values (3, 'renewed', 3)" >/dev/null
slot_wait src syncd_obs5 "$(lsn obs5)"
it_assert_contains "$W/obs5.log" "credentials read again from [archiver] credentials_file $W/sts.key with its security_token (the file changed)"
# a renewal that cannot be used (others may read it): said, and the
# credentials read before stay
cp -p "$W/sts.key" "$W/sts.key.bad"
chmod 644 "$W/sts.key.bad"
mv "$W/sts.key.bad" "$W/sts.key"
DB=obs5 psql_on src -c "insert into t values (4, 'kept ones', 4)" >/dev/null
slot_wait src syncd_obs5 "$(lsn obs5)"
it_assert_contains "$W/obs5.log" "[archiver] credentials_file $W/sts.key is open to other users (mode 644); chmod 600 it; the credentials read before are still used"
syncd_stop "$SYNCD_PID" "$W/obs5.log"
no_secret "$W/obs5.log"
objects sts
records
it_assert_eq "2 22001,3 22001,4 22001" "$(jq -r '[.key.id, .sqlstate] | join(" ")' "$W/records" | sort | paste -sd,)" "records uploaded before and after the renewal"
grep -q '^PUT token=right signed=yes$' "$W/sts.requests" ||
	it_fail "no signed PUT with the token: $(cat "$W/sts.requests")"
grep -v 'token=right signed=yes$' "$W/sts.requests" &&
	it_fail "a request without the signed token: $(cat "$W/sts.requests")"
it_pass "temporary credentials: the token (environment or key file) sent signed as X-Amz-Security-Token, the key file read again when renewed; S3 error documents name Code, Message and the fix; no token logged"
