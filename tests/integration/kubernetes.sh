#!/bin/bash
# contrib/kubernetes (issue 20): what can be checked without a cluster or
# a container engine. job.yaml parses (python3-yaml) into a ConfigMap and a
# Deployment that runs one replica, never two at once (Recreate), probes
# /healthz on the port [monitor] metrics.listen of its job file names,
# mounts the ConfigMap it ships, and gives the stop as long as the systemd
# unit does; the job file in the ConfigMap is one this syncd reads (its
# --check gets past the job file and fails on the example hosts: exit 3,
# not 2). The Containerfile builds from debian:12 with the packages of
# debian/. Not checked: that the image builds and the pod runs.
. "$top_srcdir/tests/integration/lib.sh"
W=$IT_WORK
K=$top_srcdir/contrib/kubernetes
python3 -c 'import yaml' 2>/dev/null || it_fail "python3-yaml is needed (scripts/deps test installs it)"

python3 - "$K/job.yaml" "$W/job.ini" "$top_srcdir/contrib/systemd/syncd@.service.in" <<'PY' >"$W/yaml.out" 2>&1 ||
import re, sys, yaml
path, ini_out, unit = sys.argv[1:]
def fail(msg):
    print(msg)
    sys.exit(1)
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = {d['kind']: d for d in docs}
for d in docs:
    if not d.get('apiVersion') or not d.get('metadata', {}).get('name'):
        fail('%s without apiVersion or metadata.name' % d.get('kind'))
if sorted(kinds) != ['ConfigMap', 'Deployment']:
    fail('expected a ConfigMap and a Deployment, got %s' % sorted(kinds))
cm, dep = kinds['ConfigMap'], kinds['Deployment']
ini = cm['data']['job.ini']
open(ini_out, 'w').write(ini)
spec = dep['spec']
if spec.get('replicas') != 1:
    fail('replicas %s: one process per job' % spec.get('replicas'))
if spec.get('strategy', {}).get('type') != 'Recreate':
    fail('strategy %s: two pods of one job would overlap' % spec.get('strategy'))
if spec['selector']['matchLabels'] != {k: v for k, v in spec['template']['metadata']['labels'].items() if k in spec['selector']['matchLabels']}:
    fail('the selector does not match the pod labels')
pod = spec['template']['spec']
c = pod['containers'][0]
m = re.search(r'^metrics\.listen\s*=\s*\S+:(\d+)', ini, re.M)
if not m:
    fail('the job file has no [monitor] metrics.listen')
port = int(m.group(1))
ports = {p['name']: p['containerPort'] for p in c['ports']}
for probe in ('livenessProbe', 'startupProbe'):
    g = c[probe]['httpGet']
    if g['path'] != '/healthz':
        fail('%s on %s, not /healthz' % (probe, g['path']))
    if ports.get(g['port'], g['port']) != port:
        fail('%s on port %s, metrics.listen on %d' % (probe, g['port'], port))
vols = {v['name']: v for v in pod['volumes']}
mounts = {v['mountPath']: v['name'] for v in c['volumeMounts']}
args = c['args']
job = args[args.index('-c') + 1]
d = job.rsplit('/', 1)[0]
if d not in mounts or vols[mounts[d]].get('configMap', {}).get('name') != cm['metadata']['name']:
    fail('the job file %s is not the ConfigMap %s' % (job, cm['metadata']['name']))
stop = int(re.search(r'^TimeoutStopSec=(\d+)min', open(unit).read(), re.M).group(1)) * 60
if pod.get('terminationGracePeriodSeconds', 30) < stop:
    fail('terminationGracePeriodSeconds %s, the unit gives %d s' % (pod.get('terminationGracePeriodSeconds'), stop))
sc = pod.get('securityContext', {})
if not sc.get('runAsNonRoot') or not sc.get('runAsUser'):
    fail('the pod may run as root')
print('ok: %s, port %d' % (', '.join('%s/%s' % (d['kind'], d['metadata']['name']) for d in docs), port))
PY
	it_fail "job.yaml: $(cat "$W/yaml.out")"
it_pass "job.yaml: $(cat "$W/yaml.out")"

# the ConfigMap's job file: read by this syncd; its hosts are examples
rc=0
PGCONNECT_TIMEOUT=3 "$SYNCD" --plugin-dir "$PLUGIN_DIR" --check -c "$W/job.ini" >"$W/check.out" 2>&1 || rc=$?
it_assert_eq 3 "$rc" "--check of the ConfigMap's job file (2 is a bad job file): $(cat "$W/check.out")"
grep -q 'job.ini:[0-9]' "$W/check.out" && it_fail "the job file has an error: $(cat "$W/check.out")"
it_assert_contains "$W/check.out" "shop-db.example.svc"
it_pass "the ConfigMap's job file is read by this syncd (--check fails on the example hosts only)"

# the image recipe: Debian 12, the packages of this tree
grep -q '^FROM debian:12 AS build$' "$K/Containerfile" || it_fail "the build stage is not debian:12"
grep -q '^FROM debian:12-slim$' "$K/Containerfile" || it_fail "the image is not debian:12-slim"
grep -q 'dpkg-buildpackage -us -uc -b' "$K/Containerfile" || it_fail "the Containerfile does not build the packages"
grep -q '^USER 10001:10001$' "$K/Containerfile" || it_fail "the image's user is not the pod's runAsUser"
it_pass "Containerfile: debian:12, built from debian/, runs as uid 10001"
