#!/bin/bash
# test_report.sh - render an ahasd-view report in headless Chromium.
#
#   test_report.sh AHASD_VIEW AHASD_REPLAY VIEWER_MKTRACE VIEWER_MKDB
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
#     '~';
#   - plots, on a database of hand-chosen points (tests/view_mkdb.c, where
#     the front of each study is worked out): the trade-off plot of each
#     study marks exactly the runs on its front, lists exactly them, and
#     puts every point at the database's numbers; the sweep charts hold
#     every run at its metric and interval, with one band per line
#     covering each run that has an interval, drawn with an area in
#     Chromium; the select shows one chart, and another when changed;
#   - layout: the numbers of the timeline windows in the overview do not
#     overlap, and no parameter in the runs table is broken inside.
# Takes a screenshot; with AHASD_UPDATE_SCREENSHOT=1 copies it to
# docs/report.png in the source tree.
# Exit 77 (meson: SKIP) when Chromium cannot be installed or started;
# with AHASD_REQUIRE_BROWSER=1 (./run tests sets it) that is a failure.
set -u

view=$1 replay=$2 mktrace=$3 mkdb=$4
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

# with_probe PAGE OUT JS: a copy of PAGE with the script in file JS run at
# the end of its body (it measures what Chromium drew and writes it into
# the DOM, which --dump-dom then shows).
with_probe() {
	python3 - "$1" "$2" "$3" <<'EOF' || fail "probe page $2"
import sys
page = open(sys.argv[1], encoding="utf-8").read()
probe = "<script>\n" + open(sys.argv[3], encoding="utf-8").read() + "</script>"
assert page.count("</body>") == 1
open(sys.argv[2], "w", encoding="utf-8").write(
    page.replace("</body>", probe + "</body>"))
EOF
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
cat >"$tmp/ci-probe.js" <<'EOF'
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
EOF
with_probe "$tmp/ci.html" "$tmp/ci-probe.html" "$tmp/ci-probe.js"
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

# ---- plots, on hand-chosen points ----
pdb="$tmp/plots.db"
"$mkdb" "$pdb" || fail "viewer-mkdb"
"$view" "$pdb" -o "$tmp/plots.html" || fail "ahasd-view plots.db"
# a copy with a script that measures what Chromium drew, then picks
# another metric in the select
cat >"$tmp/plots-probe.js" <<'EOF'
const shown = () => [...document.querySelectorAll('figure.lc-chart')]
  .filter(f => f.offsetParent !== null)
  .map(f => f.dataset.metric + ' over ' + f.dataset.key);
const out = {form_shown: document.getElementById('lc-pick').offsetParent !== null,
             shown: shown(), bands: [], points: []};
for (const b of document.querySelectorAll('figure.lc-chart:not([hidden]) path.band')) {
  const r = b.getBoundingClientRect();
  out.bands.push({runs: b.dataset.runs, w: r.width, h: r.height,
                  fill: getComputedStyle(b).fill,
                  opacity: parseFloat(getComputedStyle(b).fillOpacity)});
}
for (const c of document.querySelectorAll('figure.scatter circle.pt')) {
  const r = c.getBoundingClientRect();
  out.points.push({run: +c.dataset.run, front: +c.dataset.front, w: r.width});
}
const m = document.querySelector('#lc-pick select[name=metric]');
m.value = 'tokens_per_j';
m.dispatchEvent(new Event('change'));
out.after = shown();
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
EOF
with_probe "$tmp/plots.html" "$tmp/plots-probe.html" "$tmp/plots-probe.js"
chrome_run --dump-dom "file://$tmp/plots-probe.html" >"$tmp/plots-dom.html" \
	2>"$tmp/plots-dom.err" || fail "chromium --dump-dom (plots) failed"
if grep -E "CONSOLE|Uncaught|net::ERR" "$tmp/plots-dom.err" >&2; then
	fail "the plots page logged console errors"
fi
python3 - "$tmp/plots.html" "$tmp/plots-dom.html" "$pdb" <<'EOF' || fail "plot checks"
import json, sqlite3, sys
from html.parser import HTMLParser

class Plots(HTMLParser):
    """Trade-off points and front tables per study; sweep charts with
    their points and bands; the probe's output."""
    def __init__(self):
        super().__init__()
        self.study = self.chart = self.table = None
        self.points = {}     # study -> {run: (front, x, y)}
        self.listed = {}     # study -> [run]
        self.charts = {}     # (metric, key) -> {hidden, points, bands}
        self.probe = ""
        self.in_probe = False
    def handle_starttag(self, tag, a):
        a = dict(a)
        cls = (a.get("class") or "").split()
        if tag == "figure" and "scatter" in cls:
            self.study = a["data-study"]
            self.points[self.study] = {}
        elif tag == "figure" and "lc-chart" in cls:
            self.chart = (a["data-metric"], a["data-key"])
            self.charts[self.chart] = {"hidden": "hidden" in a,
                                       "points": {}, "bands": []}
        elif tag == "table" and "front" in cls:
            self.table = a["data-study"]
            self.listed[self.table] = []
        elif tag == "tr" and self.table is not None and "data-run" in a:
            self.listed[self.table].append(int(a["data-run"]))
        elif tag == "circle" and "pt" in cls and self.study is not None:
            self.points[self.study][int(a["data-run"])] = (
                int(a["data-front"]), float(a["data-x"]), float(a["data-y"]))
        elif tag == "circle" and "pt" in cls and self.chart is not None:
            num = lambda v: float(v) if v else None
            self.charts[self.chart]["points"][int(a["data-run"])] = (
                num(a["data-y"]), num(a["data-lo"]), num(a["data-hi"]))
        elif tag == "path" and "band" in cls and self.chart is not None:
            self.charts[self.chart]["bands"].append(
                tuple(int(r) for r in a["data-runs"].split(",")))
        elif tag == "pre" and a.get("id") == "probe":
            self.in_probe = True
    def handle_endtag(self, tag):
        if tag == "figure":
            self.study = self.chart = None
        elif tag == "table":
            self.table = None
        elif tag == "pre":
            self.in_probe = False
    def handle_data(self, data):
        if self.in_probe:
            self.probe += data

def parse(path):
    p = Plots()
    p.feed(open(path, encoding="utf-8").read())
    return p

src, dom = parse(sys.argv[1]), parse(sys.argv[2])
db = sqlite3.connect(sys.argv[3])
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond

# the fronts worked out in tests/view_mkdb.c
want_front = {"front": {1, 2, 4, 6, 8}, "other": {10, 11}}
summary = {r: (s, j) for r, s, j in db.execute(
    "SELECT run_id, tokens_per_s, tokens_per_j FROM run_summary")}
study = {r: l for r, l in db.execute("SELECT id, label FROM runs")}
for name, page in (("HTML", src), ("DOM", dom)):
    check(set(page.points) == {"front", "other"},
          f"{name}: one trade-off plot per study: {sorted(page.points)}")
    for st, pts in page.points.items():
        front = {r for r, (f, _, _) in pts.items() if f}
        check(front == want_front.get(st),
              f"{name}: study {st}: front {sorted(front)}, want "
              f"{sorted(want_front.get(st, ()))}")
        check(set(pts) == {r for r, l in study.items() if l == st},
              f"{name}: study {st}: a point for each of its runs")
        check(all((x, y) == summary[r] for r, (_, x, y) in pts.items()),
              f"{name}: study {st}: every point at its tokens/s, tokens/J")
        listed = page.listed.get(st, [])
        check(set(listed) == want_front.get(st) and
              [summary[r][0] for r in listed] ==
              sorted((summary[r][0] for r in listed), reverse=True),
              f"{name}: study {st}: front table lists {listed}, fastest "
              "first")

# sweep charts: hw.x is the one swept key; the default is tokens/s
ivs = {}
for r, n, lo, hi in db.execute("SELECT run_id, name, lo, hi FROM intervals"):
    ivs[(r, n)] = (lo, hi)
vals = {}
for r, n, v in db.execute("SELECT run_id, name, value FROM metrics"):
    vals[(r, n)] = v
visible = [c for c, d in src.charts.items() if not d["hidden"]]
check(visible == [("tokens_per_s", "hw.x")],
      f"HTML: one chart shown without the script: {visible}")
check({k for _, k in src.charts} == {"hw.x"}, "charts over hw.x only")
for (metric, key), d in src.charts.items():
    if metric == "speedup":
        continue
    bad = [r for r in summary if d["points"].get(r, (None,))[0] !=
           vals.get((r, metric))]
    check(not bad, f"{metric}: every run at its value ({bad} not)")
    runs_ci = {r for (r, n) in ivs if n == metric}
    cover = {}
    for b in d["bands"]:
        for r in b:
            cover[r] = cover.get(r, 0) + 1
    check(all(cover.get(r) == 1 for r in runs_ci) and
          set(cover) <= runs_ci,
          f"{metric}: each of the {len(runs_ci)} runs with an interval "
          f"in exactly one band")
    bad = [r for r in runs_ci if d["points"][r][1:] != ivs[(r, metric)]]
    check(not bad, f"{metric}: every point carries its interval "
          f"({bad} not)")
d = src.charts[("tokens_per_s", "hw.x")]
check(sorted(d["bands"]) == [(1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11)],
      f"tokens_per_s: a band per policy: {sorted(d['bands'])}")

probe = json.loads(dom.probe or "{}")
check(probe.get("form_shown") is True, "the select is shown with the script")
check(probe.get("shown") == ["tokens_per_s over hw.x"] and
      probe.get("after") == ["tokens_per_j over hw.x"],
      f"chart shown: {probe.get('shown')}, after picking tokens_per_j: "
      f"{probe.get('after')}")
bands = probe.get("bands", [])
check(len(bands) == 4 and all(b["w"] > 50 and b["h"] > 2 and
                              b["fill"] not in ("none", "") and
                              0 < b["opacity"] < 1 for b in bands),
      f"the 4 bands are drawn, with an area and a see-through fill: {bands}")
pts = probe.get("points", [])
check(len(pts) == 11 and all(p["w"] > 2 for p in pts) and
      min(p["w"] for p in pts if p["front"]) >
      max(p["w"] for p in pts if not p["front"]),
      f"every trade-off point is drawn, the front's larger: {pts}")
sys.exit(0 if ok else 1)
EOF

# ---- layout: window numbers in the overview, parameters in the table ----
ldb="$tmp/layout.db"
"$replay" -q --db "$ldb" --events --max-events 20000 -p async -d adaedl \
	"$src/traces/stories260K-skip3-greedy.msgpack" 2>/dev/null ||
	fail "ahasd-replay layout"
for args in "" "--windows 6 --window-s 0.002"; do
	# shellcheck disable=SC2086
	"$view" "$ldb" $args -o "$tmp/layout.html" || fail "ahasd-view layout"
	cat >"$tmp/layout-probe.js" <<'EOF'
const out = {labels: [], broken: [], spans: 0};
for (const svg of document.querySelectorAll('svg.overview')) {
  const boxes = [...svg.querySelectorAll('rect.winbox + text')]
    .map(t => t.getBoundingClientRect());
  out.labels.push(boxes.map(b => [b.left, b.right]));
}
for (const s of document.querySelectorAll('#runs-table .kv span')) {
  out.spans++;
  if (s.getClientRects().length !== 1) out.broken.push(s.textContent);
}
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
EOF
	with_probe "$tmp/layout.html" "$tmp/layout-probe.html" "$tmp/layout-probe.js"
	chrome_run --window-size=1280,1500 --dump-dom \
		"file://$tmp/layout-probe.html" >"$tmp/layout-dom.html" \
		2>/dev/null || fail "chromium --dump-dom (layout) failed"
	python3 - "$tmp/layout-dom.html" "$args" <<'EOF' || fail "layout checks"
import json, re, sys
m = re.search(r'<pre id="probe">(.*?)</pre>', open(sys.argv[1]).read(), re.S)
out = json.loads(m.group(1)) if m else {}
labels = out.get("labels", [])
ok = len(labels) == 1 and len(labels[0]) >= 1
for boxes in labels:
    for a, b in zip(boxes, boxes[1:]):
        ok = ok and a[1] <= b[0]
print(("ok   " if ok else "FAIL ") + f"[{sys.argv[2]}] window numbers apart: "
      f"{labels}")
good = out.get("spans", 0) >= 10 and not out.get("broken", [1])
print(("ok   " if good else "FAIL ") + f"none of {out.get('spans')} "
      f"parameters broken inside: {out.get('broken')}")
sys.exit(0 if ok and good else 1)
EOF
done

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
