# tests/bench/common.sh - sourced by the benchmarks with their arguments:
# builds BUILD_DIR ($1, default: build, a configured build tree), loads
# the integration harness (throwaway clusters, IT_WORK) and points SYNCD
# and the plugin directories at the build. Sets here, top_srcdir, build, W.
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top_srcdir/build}" && pwd)
make -s -C "$build" all >/dev/null
. "$top_srcdir/tests/integration/lib.sh"
export SYNCD="$build/syncd" PLUGIN_DIR="$build/plugins" TEST_PLUGIN_DIR="$build/plugins"
W=$IT_WORK
