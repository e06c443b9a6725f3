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
#   - the page logged nothing to the console (it has no script at all);
#   - error bars: a second report, of runs on two shipped traces (64
#     sequences each), has an error bar for every run's throughput,
#     efficiency and acceptance and for every speed-up over another run;
#     a script added to a copy of it measures them as Chromium laid them
#     out: each is drawn (a stroke, a height) and spans the end of its
#     bar, and the one speed-up whose paired interval holds 1 is marked
#     '~'.
# Takes a screenshot; with AHASD_UPDATE_SCREENSHOT=1 copies it to
# docs/report.png in the source tree.
# Exit 77 (meson: SKIP) when Chromium cannot be installed or started;
# with AHASD_REQUIRE_BROWSER=1 (./run tests sets it) that is a failure.
set -u

view=$1 replay=$2 mktrace=$3
src=${AHASD_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

skip() {
	if [ "${AHASD_REQUIRE_BROWSER:-0}" = 1 ]; then
		echo "FAIL: the browser test cannot run and AHASD_REQUIRE_BROWSER=1: $*" >&2
		exit 1
	fi
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
	sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo -n)
	if command -v apt-get >/dev/null 2>&1 &&
		{ [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
		echo "chromium missing: apt-get install -y chromium" >&2
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y \
			chromium >&2 || skip "apt-get install chromium failed"
		chrome=$(find_chromium) || skip "chromium not found after install"
	else
		skip "chromium is not installed and cannot be installed (not root, no sudo)"
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

# Error bars, on runs with enough sequences to have real intervals:
# sync, async and ahasd with AdaEDL on npu-pim (both distinguishable from
# sync), and sync and ahasd with fixed on gpu-pim on aidreams260K, whose
# paired interval holds 1 (tests/test_intervals.c).
cidb="$tmp/ci.db"
"$replay" -q --db "$cidb" -p sync -p async -p ahasd -d adaedl \
	"$src/traces/stories260K-skip3-greedy.msgpack" || fail "ahasd-replay ci"
"$replay" -q --db "$cidb" -p sync -p ahasd -d fixed -w gpu-pim \
	"$src/traces/aidreams260K-skip2-greedy.msgpack" || fail "ahasd-replay ci"
"$view" "$cidb" -o "$tmp/ci.html" || fail "ahasd-view ci.db"
# a copy with a script that measures what Chromium drew
python3 - "$tmp/ci.html" "$tmp/ci-probe.html" <<'EOF' || fail "probe page"
import sys
page = open(sys.argv[1], encoding="utf-8").read()
probe = """<script>
const out = [];
for (const row of document.querySelectorAll('g.row')) {
  for (const e of row.querySelectorAll('g.errbar')) {
    const m = e.dataset.metric;
    const bar = row.querySelector('rect.bar[data-metric="' + m + '"]');
    const b = bar.getBoundingClientRect(), r = e.getBoundingClientRect();
    const cs = getComputedStyle(e.querySelector('line'));
    out.push({run: +row.dataset.run, metric: +m, bar_right: b.right,
              left: r.left, right: r.right, height: r.height,
              stroke: cs.stroke, stroke_width: parseFloat(cs.strokeWidth)});
  }
}
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""
assert page.count("</body>") == 1
open(sys.argv[2], "w", encoding="utf-8").write(
    page.replace("</body>", probe + "</body>"))
EOF
chrome_run --dump-dom "file://$tmp/ci-probe.html" >"$tmp/ci-dom.html" \
	2>"$tmp/ci-dom.err" || fail "chromium --dump-dom (error bars) failed"
if grep -E "CONSOLE|Uncaught|net::ERR" "$tmp/ci-dom.err" >&2; then
	fail "the probe page logged console errors"
fi
python3 - "$tmp/ci.html" "$tmp/ci-dom.html" "$cidb" <<'EOF' || fail "error bar checks"
import json, sqlite3, sys
from html.parser import HTMLParser

class Bars(HTMLParser):
    """Error bars per (run, metric) of the chart, the chart's speed-up
    labels per run, and the probe's output."""
    def __init__(self):
        super().__init__()
        self.run = None
        self.bars = set()
        self.labels = {}
        self.probe = ""
        self.in_probe = self.in_text = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "g" and a.get("class") == "row":
            self.run = int(a["data-run"])
            self.labels.setdefault(self.run, [])
        elif tag == "g" and a.get("class") == "errbar":
            self.bars.add((self.run, int(a["data-metric"])))
        elif tag == "pre" and a.get("id") == "probe":
            self.in_probe = True
        elif tag == "text" and self.run is not None:
            self.in_text = True
    def handle_endtag(self, tag):
        if tag == "pre":
            self.in_probe = False
        elif tag == "text":
            self.in_text = False
        elif tag == "g" and self.run is not None and not self.in_text:
            pass
        elif tag == "svg":
            self.run = None
    def handle_data(self, data):
        if self.in_probe:
            self.probe += data
        elif self.in_text and self.run is not None:
            self.labels[self.run].append(data)

def parse(path):
    p = Bars()
    p.feed(open(path, encoding="utf-8").read())
    return p

src, dom = parse(sys.argv[1]), parse(sys.argv[2])
db = sqlite3.connect(sys.argv[3])
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond

runs = [r for (r,) in db.execute("SELECT id FROM runs ORDER BY id")]
compared = {r for (r,) in db.execute(
    "SELECT run_id FROM speedup_vs_sync WHERE baseline_run_id <> run_id "
    "AND speedup_lo IS NOT NULL")}
check(runs == [1, 2, 3, 4, 5] and compared == {2, 3, 5},
      f"runs {runs}, compared with another sync run {sorted(compared)}")
want = {(r, m) for r in runs for m in (0, 1, 2)} | {(r, 4) for r in compared}
check(src.bars == want, f"error bars in the HTML, differences: "
      f"{sorted(src.bars ^ want)}")
check(dom.bars == want, "the same error bars in the DOM Chromium built")
probe = json.loads(dom.probe or "[]")
check(len(probe) == len(want),
      f"{len(probe)} error bars measured, want {len(want)}")
for e in probe:
    what = f"run {e['run']} metric {e['metric']}"
    check(e["height"] >= 3 and e["stroke"] not in ("none", "") and
          e["stroke_width"] > 0, f"{what}: drawn ({e['height']:.1f} px "
          f"high, stroke {e['stroke']})")
    check(e["left"] - 1 <= e["bar_right"] <= e["right"] + 1,
          f"{what}: spans its bar's end ({e['left']:.1f} <= "
          f"{e['bar_right']:.1f} <= {e['right']:.1f})")
wide = [e for e in probe if e["right"] - e["left"] > 2]
check(len(wide) >= len(runs), f"{len(wide)} error bars wider than 2 px")
# '~' on the speed-up exactly where the paired interval holds 1
same = {r for (r,) in db.execute(
    "SELECT run_id FROM speedup_vs_sync WHERE speedup_differs = 0 AND "
    "baseline_run_id <> run_id")}
check(same == {5}, f"not distinguishable from sync: {sorted(same)}, want [5]")
for r in runs:
    marked = any("\u00d7 ~" in t for t in dom.labels.get(r, []))
    check(marked == (r in same), f"run {r}: speed-up marked '~': {marked}")
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
