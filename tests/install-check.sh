#!/bin/sh
# install-check.sh - meson install into a temporary DESTDIR and use the result
# as a user, a plugin author and a runtime author would: the installed
# binaries, plugins, presets, headers and pkg-config files; build the
# example plugin with `cc $(pkg-config --cflags ahasd-policy)` and the
# capture example with `pkg-config --cflags --libs ahasd-capture`; run the
# INSTALLED ahasd-replay.
# Needs AHASD_BUILD_ROOT and AHASD_SOURCE_ROOT (the meson test env).
set -eu

fail() { echo "install-check: FAIL: $*" >&2; exit 1; }

: "${AHASD_BUILD_ROOT:?run through meson test}"
: "${AHASD_SOURCE_ROOT:?run through meson test}"
# The test env points these into the build tree; the installed binary must
# find everything in the DESTDIR instead, so start from nothing.
unset AHASD_PLUGIN_PATH AHASD_PRESET_PATH

# Outside the build tree: a binary under it would look for plugins there.
tmp=$(mktemp -d /tmp/ahasd-install-check-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

meson=${MESON:-meson}
command -v "$meson" >/dev/null 2>&1 || fail "meson not on PATH (set MESON)"
"$meson" install -C "$AHASD_BUILD_ROOT" --destdir "$dest" --no-rebuild \
	--quiet >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "meson install"; }

# Where things went: the .pc file knows the prefix and plugin dir.
pc=$(find "$dest" -name ahasd-policy.pc | head -n 1)
[ -n "$pc" ] || fail "no ahasd-policy.pc installed"
pcdir=$(dirname "$pc")
PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_PATH
prefix=$(pkg-config --variable=prefix ahasd-policy)
plugindir=$(pkg-config --variable=plugindir ahasd-policy)
root=$dest$prefix
echo "prefix $prefix, plugins $plugindir (under $dest)"

for f in "$root/bin/ahasd-replay" "$root/bin/ahasd-trace"; do
	[ -x "$f" ] || fail "$f not installed"
done
for p in sync async ahasd fixed specdecpp svip adaedl banditspec; do
	[ -f "$dest$plugindir/$p.so" ] || fail "plugin $p.so not in $dest$plugindir"
done
hdr=$(find "$root/include" -name ahasd_plugin.h | head -n 1)
[ -n "$hdr" ] || fail "ahasd_plugin.h not installed"
[ -f "$(dirname "$hdr")/ahasd_plugin_params.h" ] ||
	fail "ahasd_plugin_params.h not installed beside $hdr"
presetdir=$root/share/ahasd-replay/presets
[ -f "$presetdir/npu-pim.ini" ] || fail "presets not in $presetdir"

# The .pc file names the real prefix; point it at the DESTDIR.
cflags=$(pkg-config --define-variable=prefix="$root" --cflags ahasd-policy)
incdir=$(printf '%s\n' "$cflags" | sed -n 's/^-I\([^ ]*\) *$/\1/p')
[ -f "$incdir/ahasd_plugin.h" ] ||
	fail "pkg-config --cflags gave '$cflags', not -I<dir with ahasd_plugin.h>"
case "$incdir" in
	"$root/include"*) ;;
	*) fail "pkg-config -I points outside the DESTDIR: $cflags" ;;
esac

# A plugin author's build: the example plugin (it parses its parameter
# with ahasd_plugin_params.h), only the installed headers.
# shellcheck disable=SC2086 # cflags is a word list
cc $cflags -std=c17 -Wall -Wextra -Werror -shared -fPIC \
	"$AHASD_SOURCE_ROOT/tests/example_plugin/greedy_lookahead.c" \
	-o "$tmp/greedy_lookahead.so" || fail "building the example plugin"
# Each header on its own as strict C11; the parsers are header-only
# (static inline, libc only), so a program calling one links with no -l.
printf '#include <ahasd_plugin.h>\nint main(void) { return 0; }\n' \
	>"$tmp/abi.c"
cat >"$tmp/params.c" <<'EOF'
#include <ahasd_plugin_params.h>
int main(void)
{
	uint32_t k = 0;
	char err[64];

	return ahasd_parse_u32("k", "7", 1, 9, &k, err, sizeof err) != 0 ||
	       k != 7;
}
EOF
for f in abi params; do
	# shellcheck disable=SC2086 # cflags is a word list
	cc $cflags -std=c11 -pedantic -Wall -Wextra -Werror "$tmp/$f.c" \
		-o "$tmp/$f" || fail "$f.c: a header alone as C11"
done
"$tmp/params" || fail "ahasd_parse_u32 of k=7 in the installed header"

"$root/bin/ahasd-trace" synth -o "$tmp/t.msgpack" --sequences 4 --tokens 64 \
	>/dev/null || fail "installed ahasd-trace synth"

# The C capture API: its header beside the plugin header, its .pc, a
# library that exports the API and nothing else; the example runtime
# (capture/examples) built as a runtime author would, with
# `pkg-config --cflags --libs ahasd-capture` only, run against the
# INSTALLED library; its trace read by the installed tools below.
[ -f "$(dirname "$hdr")/ahasd_capture.h" ] ||
	fail "ahasd_capture.h not installed beside $hdr"
[ -n "$(find "$dest" -name ahasd-capture.pc)" ] || fail "no ahasd-capture.pc installed"
PKG_CONFIG_PATH=$pcdir:$(dirname "$(find "$dest" -name ahasd-capture.pc | head -n 1)")
capflags=$(pkg-config --define-variable=prefix="$root" --cflags --libs ahasd-capture) ||
	fail "pkg-config --cflags --libs ahasd-capture"
caplibdir=$(pkg-config --define-variable=prefix="$root" --variable=libdir ahasd-capture)
case "$caplibdir" in
	"$root"/*) ;;
	*) fail "ahasd-capture.pc's libdir is outside the DESTDIR: $caplibdir" ;;
esac
[ -f "$caplibdir/libahasd-capture.so.1" ] || fail "libahasd-capture.so.1 not in $caplibdir"
exported=$(nm -D --defined-only "$caplibdir/libahasd-capture.so.1" |
	awk '$2 == "T" { print $3 }' | grep -v '^ahasd_capture_' || true)
[ -z "$exported" ] || fail "libahasd-capture exports more than the API: $exported"
# A sanitizer build installs an instrumented library; a program that loads
# it must be instrumented too (the sanitizer runtime has to come first).
sans=
libs=$(ldd "$caplibdir/libahasd-capture.so.1")
case "$libs" in *libasan*) sans=address ;; esac
case "$libs" in *libubsan*) sans=${sans:+$sans,}undefined ;; esac
[ -z "$sans" ] || capflags="$capflags -fsanitize=$sans"
# shellcheck disable=SC2086 # capflags is a word list
cc -std=c17 -Wall -Wextra -Werror "$AHASD_SOURCE_ROOT/capture/examples/toy_runtime.c" \
	$capflags -lm -o "$tmp/toy_runtime" || fail "building the capture example"
printf '#include <ahasd_capture.h>\nint main(void) { return ahasd_capture_api_version() != AHASD_CAPTURE_API_VERSION; }\n' \
	>"$tmp/capi.c"
# shellcheck disable=SC2086
cc -std=c11 -pedantic -Wall -Wextra -Werror "$tmp/capi.c" $capflags \
	-o "$tmp/capi" || fail "ahasd_capture.h alone as C11"
if command -v c++ >/dev/null 2>&1; then
	cp "$tmp/capi.c" "$tmp/capi.cc"
	# shellcheck disable=SC2086
	c++ -std=c++17 -pedantic -Wall -Wextra -Werror "$tmp/capi.cc" $capflags \
		-o "$tmp/capi-cxx" || fail "ahasd_capture.h as C++17"
	LD_LIBRARY_PATH=$caplibdir "$tmp/capi-cxx" || fail "the C++ program's API version"
fi
LD_LIBRARY_PATH=$caplibdir "$tmp/capi" || fail "the installed library's API version"
LD_LIBRARY_PATH=$caplibdir ldd "$tmp/toy_runtime" | grep -q "$caplibdir/libahasd-capture.so.1" ||
	fail "the example does not load the installed library"
LD_LIBRARY_PATH=$caplibdir "$tmp/toy_runtime" "$tmp/toy.msgpack" ||
	fail "the capture example run against the installed library"
"$root/bin/ahasd-trace" validate "$tmp/toy.msgpack" >/dev/null ||
	fail "the capture example's trace does not validate"
# its draft without a model: format 1.1 (accepted runs, no entropies)
LD_LIBRARY_PATH=$caplibdir "$tmp/toy_runtime" "$tmp/toy-lookup.msgpack" --lookup ||
	fail "the capture example --lookup run against the installed library"
"$root/bin/ahasd-trace" validate "$tmp/toy-lookup.msgpack" >/dev/null ||
	fail "the capture example's --lookup trace does not validate"

# The prefix is not really installed, so tell the installed binary where
# its plugins and presets are.
AHASD_PLUGIN_PATH=$dest$plugindir
AHASD_PRESET_PATH=$presetdir
export AHASD_PLUGIN_PATH AHASD_PRESET_PATH

"$root/bin/ahasd-replay" --list >"$tmp/list.txt" 2>&1 ||
	{ cat "$tmp/list.txt" >&2; fail "installed ahasd-replay --list"; }
grep -q "^ahasd .*$dest$plugindir/ahasd.so" "$tmp/list.txt" ||
	{ cat "$tmp/list.txt" >&2; fail "--list does not show the installed plugins"; }

# Two commands: --param is checked per run against that run's plugins, so
# one command with both policies would refuse max_unverified on the ahasd run.
cd "$tmp"
: >"$tmp/out.txt"
for args in "--policy ./greedy_lookahead.so --param max_unverified=3" \
            "--policy ahasd.so"; do
	# shellcheck disable=SC2086 # args is a word list
	"$root/bin/ahasd-replay" $args --drafter fixed --db "$tmp/r.db" \
		"$tmp/t.msgpack" >>"$tmp/out.txt" 2>"$tmp/err.txt" ||
		{ cat "$tmp/out.txt" "$tmp/err.txt" >&2; fail "installed ahasd-replay $args"; }
	[ ! -s "$tmp/err.txt" ] || { cat "$tmp/err.txt" >&2; fail "stderr not empty"; }
done
cat "$tmp/out.txt"
grep -q "^run 1: greedy_lookahead/fixed on npu-pim, .*: 256 tokens" "$tmp/out.txt" ||
	fail "no run 1 line"
grep -q "^run 2: ahasd/fixed on npu-pim, .*: 256 tokens" "$tmp/out.txt" ||
	fail "no run 2 line"

# the capture example's trace replays under the installed binary
"$root/bin/ahasd-replay" --policy ahasd.so --drafter fixed --db "$tmp/toy.db" \
	"$tmp/toy.msgpack" >"$tmp/toy.txt" 2>&1 ||
	{ cat "$tmp/toy.txt" >&2; fail "installed ahasd-replay on the capture example's trace"; }
grep -q "^run 1: ahasd/fixed on npu-pim, .*: 341 tokens" "$tmp/toy.txt" ||
	{ cat "$tmp/toy.txt" >&2; fail "no run line for the capture example's trace"; }
cat "$tmp/toy.txt"
"$root/bin/ahasd-replay" --policy sync.so --drafter fixed --db "$tmp/toy.db" \
	"$tmp/toy-lookup.msgpack" >"$tmp/toy.txt" 2>&1 ||
	{ cat "$tmp/toy.txt" >&2; fail "installed ahasd-replay on the --lookup trace"; }
grep -q "^run 2: sync/fixed on npu-pim, .*: 384 tokens" "$tmp/toy.txt" ||
	{ cat "$tmp/toy.txt" >&2; fail "no run line for the --lookup trace"; }
cat "$tmp/toy.txt"

if command -v sqlite3 >/dev/null 2>&1; then
	got=$(sqlite3 "$tmp/r.db" "SELECT group_concat(policy || '|' || policy_path || '|' || drafter_path, ' ') FROM (SELECT * FROM runs ORDER BY id)")
	want="greedy_lookahead|$tmp/greedy_lookahead.so|$dest$plugindir/fixed.so ahasd|$dest$plugindir/ahasd.so|$dest$plugindir/fixed.so"
	[ "$got" = "$want" ] || fail "runs: got '$got', want '$want'"
	got=$(sqlite3 "$tmp/r.db" "SELECT group_concat(value, ' ') FROM (SELECT value FROM metrics WHERE name IN ('committed', 'policy.max_unverified') ORDER BY run_id, name)")
	[ "$got" = "256.0 3.0 256.0" ] || fail "metrics: got '$got'"
else
	echo "sqlite3 CLI not installed: checked the run lines only"
fi
echo "install-check: ok"
