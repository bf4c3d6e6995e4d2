#!/bin/bash
# The shape of the tree, checked like any behaviour: no module of the core
# or of a plugin uses a module that uses it back (scripts/include-cycles),
# and no plugin includes a header of the core (plugins see only the SDK;
# the build enforces it too, with only sdk/include on their path).
set -u
src=${top_srcdir:-.}
rc=0
dirs="$src/core"
for d in "$src"/plugins/* "$src"/sdk/examples/*; do
	[ -d "$d" ] && dirs="$dirs $d"
done
# shellcheck disable=SC2086
"$src/scripts/include-cycles" $dirs || rc=1
core_headers=$(cd "$src/core" && ls ./*.h | sed 's|^\./||')
for h in $core_headers; do
	for d in "$src"/plugins/* "$src"/sdk/examples/* "$src"/tests/plugins; do
		[ -e "$d/$h" ] && continue # a plugin's own header of that name
		if grep -rlq --include='*.[ch]' "#include \"$h\"" "$d" 2>/dev/null; then
			echo "structure: $d includes the core's $h"
			rc=1
		fi
	done
done
[ $rc -eq 0 ] && echo "structure: ok: no cycles in $(echo $dirs | wc -w) directories; plugins include no core header"
exit $rc
