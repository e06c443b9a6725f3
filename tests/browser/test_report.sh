#!/bin/bash
# test_report.sh - render an ahasd-view report in headless Chromium.
#
#   test_report.sh AHASD_VIEW AHASD_REPLAY VIEWER_MKTRACE
#
# Builds a results database with the real ahasd-replay from the hand-built
# traces of viewer-mktrace, writes the report, and checks in the DOM that
# Chromium actually rendered:
#   - the two runs replaying hand.trace (fixed k=4, preset gpu) hold exactly
#     15 task rectangles, 12 draft + 3 verify (worked out in
#     tests/viewer_mktrace.c);
#   - every timeline holds as many task rectangles as ahasd-view wrote;
#   - the run replayed without --events says so;
#   - the page logged nothing to the console (it has no script at all).
# Takes a screenshot; with AHASD_UPDATE_SCREENSHOT=1 copies it to
# docs/report.png in the source tree.
# Exit 77 (meson: SKIP) when Chromium cannot be installed or started.
set -u

view=$1 replay=$2 mktrace=$3
src=${AHASD_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

skip() {
	echo "SKIP: $*" >&2
	echo "SKIP: browser test did NOT run: $*"
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

find_chromium() {
	for c in chromium chromium-browser google-chrome; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

chrome=$(find_chromium)
if [ -z "$chrome" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "chromium missing: apt-get install -y chromium" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
			>&2 || skip "apt-get install chromium failed"
		chrome=$(find_chromium) || skip "chromium not found after install"
	else
		skip "chromium is not installed and cannot be installed (not root)"
	fi
fi

tmp=$(mktemp -d /tmp/ahasd-browser-XXXXXX) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
profile="$tmp/profile"
mkdir -p "$profile"

chrome_run() {
	timeout 120 "$chrome" --headless --no-sandbox --disable-gpu \
		--disable-background-networking --disable-component-update \
		--disable-sync --no-first-run --disable-extensions \
		--user-data-dir="$profile" --enable-logging=stderr --v=0 "$@"
}

# Can it start at all, and can the console check fail? A page that
# throws must dump, and its error must show in the log.
printf '%s\n' '<!DOCTYPE html><html><body><script>undefined_fn();</script></body></html>' \
	>"$tmp/throws.html"
if ! chrome_run --dump-dom "file://$tmp/throws.html" >"$tmp/throws.dom" \
	2>"$tmp/throws.err" || ! grep -q "<html" "$tmp/throws.dom"; then
	tail -5 "$tmp/throws.err" >&2
	skip "chromium ($chrome) does not start headless here"
fi
grep -q "CONSOLE.*Uncaught" "$tmp/throws.err" ||
	fail "console errors are not visible in chromium's log; the check below would be blind"

# The database, from the real replay.
"$mktrace" "$tmp" || fail "viewer-mktrace"
db="$tmp/results.db"
# runs 1-6: demo.trace; 7, 8: hand.trace; 9: no events
"$replay" -q --db "$db" --events --label demo -w npu-pim -p ahasd -p async \
	-p sync -d fixed -d adaedl "$tmp/demo.trace" || fail "ahasd-replay demo.trace"
"$replay" -q --db "$db" --events --label hand -w gpu -p async -p sync \
	-d fixed -P k=4 "$tmp/hand.trace" || fail "ahasd-replay hand.trace"
"$replay" -q --db "$db" --label no-events -w npu-pim -p ahasd -d fixed \
	"$tmp/hand.trace" || fail "ahasd-replay without --events"
"$view" "$db" --max-timelines 9 -o "$tmp/report.html" || fail "ahasd-view"

chrome_run --dump-dom "file://$tmp/report.html" >"$tmp/dom.html" \
	2>"$tmp/dom.err" || fail "chromium --dump-dom failed"
if grep -E "CONSOLE|Uncaught|net::ERR" "$tmp/dom.err" >&2; then
	fail "the report logged console errors or failed loads"
fi

python3 - "$tmp/report.html" "$tmp/dom.html" <<'EOF' || fail "DOM checks"
import sys
from html.parser import HTMLParser

class Count(HTMLParser):
    """Task rects per run article, by kind; runs without events."""
    def __init__(self):
        super().__init__()
        self.run = None
        self.tasks = {}
        self.noev = set()
        self.labels = {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "article" and "data-run" in a:
            self.run = int(a["data-run"])
            self.tasks.setdefault(self.run, {})
        elif tag == "rect" and "task" in a.get("class", "").split():
            k = a.get("data-kind")
            d = self.tasks[self.run]
            d[k] = d.get(k, 0) + 1
        elif "data-no-events" in a:
            self.noev.add(self.run)

def count(path):
    c = Count()
    c.feed(open(path, encoding="utf-8").read())
    return c

src, dom = count(sys.argv[1]), count(sys.argv[2])
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond

# runs 7, 8: hand.trace (ahasd-replay numbers runs in order of creation)
for run in (7, 8):
    got = dom.tasks.get(run, {})
    check(got == {"draft": 12, "verify": 3},
          f"run {run} (hand.trace) rendered {got}, want 12 draft + 3 verify")
check(len(dom.tasks) == 9, f"{len(dom.tasks)} run timelines rendered, want 9")
for run, kinds in sorted(src.tasks.items()):
    check(dom.tasks.get(run) == kinds,
          f"run {run}: DOM {sum(dom.tasks.get(run, {}).values())} task rects,"
          f" HTML {sum(kinds.values())}")
check(dom.noev == {9}, f"runs marked without events: {sorted(dom.noev)}, want [9]")
total = sum(sum(k.values()) for k in dom.tasks.values())
check(total > 30, f"{total} task rects in all")
sys.exit(0 if ok else 1)
EOF

chrome_run --hide-scrollbars --window-size=1280,1500 \
	--screenshot="$tmp/report.png" "file://$tmp/report.html" \
	>/dev/null 2>"$tmp/shot.err" || fail "chromium --screenshot failed"
head -c 8 "$tmp/report.png" | od -An -c | grep -q "P   N   G" ||
	fail "screenshot is not a PNG"
size=$(stat -c %s "$tmp/report.png")
[ "$size" -gt 20000 ] || fail "screenshot suspiciously small ($size bytes)"
echo "screenshot: $size bytes"
if [ "${AHASD_UPDATE_SCREENSHOT:-0}" = 1 ]; then
	mkdir -p "$src/docs"
	cp "$tmp/report.png" "$src/docs/report.png" || fail "copy screenshot"
	echo "updated $src/docs/report.png"
fi
echo "PASS: report rendered by $("$chrome" --version 2>/dev/null | head -1)"
