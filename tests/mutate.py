#!/usr/bin/env python3
"""mutate.py - mutation testing of the core against the unit suites.

Reads the committed list tests/mutants.txt (format at its top), checks that
every mutant still applies to the tree, copies the tree to a scratch
directory (never touching the working tree), builds it once with meson,
then for each mutant: writes the mutated file into the scratch copy,
rebuilds with ninja, runs the unit suites, and puts the file back. A
mutant is killed when a suite fails (or times out); it survives when all
pass. The kill rate is killed / (mutants - equivalent ones).

  ./run mutate                   every mutant, the unit suites
  ./run mutate --check           only check that every mutant applies
  ./run mutate --list            print the list
  ./run mutate --only 3,7-9      some of them
  ./run mutate --golden          also run the golden digest on survivors
  ./run mutate --fast            stop a mutant's test run at its first
                                 failing suite (killers then incomplete)

Exit status: 0 when the rate is at least --min-rate (default 95) and every
mutant tagged `survivor` is killed; 1 otherwise; 2 when the list is broken
(a mutant no longer applies, does not compile, or the unmutated tree fails
its own tests).
"""
import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The unit suites; golden (slow, whole-grid digest), browser (needs
# Chromium), fuzz (corpora), torch (the PyTorch capture, not the core) and
# this list's own check are left out.
SKIP_SUITES = ["browser", "golden", "fuzz", "mutants", "torch"]


class ListError(Exception):
    pass


def parse(path):
    """The mutants of path: a list of dicts (see tests/mutants.txt)."""
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, raw in enumerate(lines, 1):
        where = "%s:%d" % (os.path.relpath(path, ROOT), no)
        if raw.startswith("=== "):
            words = raw[4:].split()
            if not words or not words[0].isdigit():
                raise ListError("%s: '=== N [tags]' expected" % where)
            cur = {"id": int(words[0]), "tags": words[1:], "file": None,
                   "why": None, "equivalent": None, "occurrence": None,
                   "old": [], "new": [], "line": no}
            if mutants and cur["id"] <= mutants[-1]["id"]:
                raise ListError("%s: mutant ids must increase" % where)
            mutants.append(cur)
            continue
        if raw.startswith("#") or not raw.strip():
            continue
        if cur is None:
            raise ListError("%s: text before the first mutant" % where)
        if raw.startswith("- ") or raw == "-":
            cur["old"].append(raw[2:])
        elif raw.startswith("+ ") or raw == "+":
            cur["new"].append(raw[2:])
        else:
            key, _, val = raw.partition(" ")
            if key not in ("file", "why", "equivalent", "occurrence"):
                raise ListError("%s: unknown line '%s'" % (where, raw))
            cur[key] = val.strip()
    for m in mutants:
        where = "mutant %d (line %d)" % (m["id"], m["line"])
        if not m["file"] or not m["why"] or not m["old"]:
            raise ListError("%s: needs file, why and '- ' lines" % where)
        m["old"] = "\n".join(m["old"])
        m["new"] = "\n".join(m["new"])
        if m["old"] == m["new"]:
            raise ListError("%s: replacement equals the original" % where)
        if m["occurrence"] is not None:
            if not m["occurrence"].isdigit() or int(m["occurrence"]) < 1:
                raise ListError("%s: occurrence is a number >= 1" % where)
            m["occurrence"] = int(m["occurrence"])
    return mutants


def mutated_text(root, m):
    """(original, mutated) contents of m's file under root; raises
    ListError when the snippet is gone or ambiguous."""
    path = os.path.join(root, m["file"])
    if not os.path.isfile(path):
        raise ListError("mutant %d no longer applies: %s does not exist"
                        % (m["id"], m["file"]))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    count = text.count(m["old"])
    occ = m["occurrence"]
    snippet = m["old"].split("\n")[0].strip()
    if count == 0 or (occ and count < occ):
        raise ListError("mutant %d no longer applies: %s: '%s' not found%s"
                        % (m["id"], m["file"], snippet,
                           " %d times" % occ if occ else ""))
    if occ is None and count > 1:
        raise ListError("mutant %d is ambiguous: %s: '%s' occurs %d times; "
                        "give 'occurrence N'" % (m["id"], m["file"],
                                                 snippet, count))
    at = -1
    for _ in range(occ or 1):
        at = text.index(m["old"], at + 1)
    return text, text[:at] + m["new"] + text[at + len(m["old"]):]


def select(mutants, only):
    if not only:
        return mutants
    want = set()
    for part in only.split(","):
        a, _, b = part.partition("-")
        want.update(range(int(a), int(b or a) + 1))
    return [m for m in mutants if m["id"] in want]


def tracked_files(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached",
                          "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def copy_tree(root, dst):
    """Copy the tree's files (tracked and new, not ignored) to dst. A file
    whose contents differ is written anew, with the current time: its
    own time may be older than what a reused build directory built since
    (a mutated header rebuilds objects after the edit), and ninja would
    then keep the stale objects. Files that are the same keep their time,
    so only what changed rebuilds."""
    for rel in tracked_files(root):
        src = os.path.join(root, rel)
        if not os.path.isfile(src) or os.path.islink(src):
            continue
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.exists(out) and filecmp.cmp(src, out, shallow=False):
            continue
        shutil.copyfile(src, out)
        shutil.copymode(src, out)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def test_cmd(build, suites, fast, mult):
    cmd = ["meson", "test", "-C", build, "--no-rebuild",
           "--timeout-multiplier", str(mult)]
    if suites:
        for s in suites:
            cmd += ["--suite", s]
    else:
        for s in SKIP_SUITES:
            cmd += ["--no-suite", s]
    if fast:
        cmd += ["--maxfail", "1"]
    return cmd


def failing_tests(build):
    """Names of the tests that failed in the last meson test run (not the
    ones --fast interrupted)."""
    bad = []
    log = os.path.join(build, "meson-logs", "testlog.json")
    with open(log, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)
            if t.get("result") in ("FAIL", "TIMEOUT", "ERROR",
                                   "UNEXPECTEDPASS"):
                bad.append(t["name"])
    return bad


def run_tests(build, suites=None, fast=False, mult=0.2):
    r = run(test_cmd(build, suites, fast, mult))
    return r.returncode, failing_tests(build), r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list-file", default=os.path.join(HERE, "mutants.txt"))
    ap.add_argument("--check", action="store_true",
                    help="only check that every mutant applies")
    ap.add_argument("--list", action="store_true", help="print the list")
    ap.add_argument("--only", help="ids, e.g. 1,4-6")
    ap.add_argument("--scratch", help="scratch directory (default: "
                    "$TMPDIR/ahasd-mutate-$USER, reused between runs)")
    ap.add_argument("--golden", action="store_true",
                    help="run the golden digest on each survivor too")
    ap.add_argument("--fast", action="store_true",
                    help="stop each test run at its first failure")
    ap.add_argument("--min-rate", type=float, default=95.0)
    ap.add_argument("--timeout-multiplier", type=float, default=0.2,
                    help="of each test's timeout (a hung mutant is killed "
                    "by its timeout)")
    ap.add_argument("--report", help="also write the report to this file")
    a = ap.parse_args()

    try:
        mutants = parse(a.list_file)
        chosen = select(mutants, a.only)
        errors = []
        for m in mutants:
            try:
                mutated_text(ROOT, m)
            except ListError as e:
                errors.append(str(e))
        if errors:
            raise ListError("\n".join(errors))
    except ListError as e:
        print("mutate: %s" % e, file=sys.stderr)
        return 2
    if a.list:
        for m in chosen:
            eq = "  [equivalent: %s]" % m["equivalent"] if m["equivalent"] \
                else ""
            tags = " (%s)" % ", ".join(m["tags"]) if m["tags"] else ""
            print("%3d %-28s %s%s%s" % (m["id"], m["file"], m["why"], tags,
                                        eq))
        return 0
    if a.check:
        print("mutate: all %d mutants apply (%d equivalent)"
              % (len(mutants), sum(1 for m in mutants if m["equivalent"])))
        return 0

    scratch = a.scratch or os.path.join(
        tempfile.gettempdir(), "ahasd-mutate-%s" % os.environ.get(
            "USER", str(os.getuid())))
    src, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
    os.makedirs(src, exist_ok=True)
    t0 = time.time()
    copy_tree(ROOT, src)
    if not os.path.isfile(os.path.join(build, "build.ninja")):
        models = os.path.normpath(os.path.join(ROOT, "..", "shared",
                                               "models"))
        r = run(["meson", "setup", build, src, "-Dmodels_dir=" + models])
        if r.returncode:
            print(r.stdout, file=sys.stderr)
            return 2
    r = run(["ninja", "-C", build])
    if r.returncode:
        print(r.stdout[-4000:], file=sys.stderr)
        print("mutate: the unmutated scratch tree does not build",
              file=sys.stderr)
        return 2
    rc, bad, out = run_tests(build, mult=a.timeout_multiplier)
    if rc:
        print(out[-4000:], file=sys.stderr)
        print("mutate: the unmutated tree fails %s" % ", ".join(bad),
              file=sys.stderr)
        return 2
    print("mutate: scratch %s built and green in %.0f s; %d mutants"
          % (scratch, time.time() - t0, len(chosen)), flush=True)

    results = []
    for m in chosen:
        t1 = time.time()
        path = os.path.join(src, m["file"])
        orig, text = mutated_text(src, m)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            r = run(["ninja", "-C", build])
            if r.returncode:
                status, killers = "NOCOMPILE", []
                detail = r.stdout[-2000:]
            else:
                rc, killers, _ = run_tests(build, fast=a.fast,
                                           mult=a.timeout_multiplier)
                status = "killed" if killers or rc else "SURVIVED"
                if status == "SURVIVED" and a.golden:
                    rc, gk, _ = run_tests(build, suites=["golden"], mult=1)
                    if gk or rc:
                        status, killers = "golden", gk or ["golden"]
                detail = ""
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(orig)
        if m["equivalent"]:
            status = "equiv-KILLED" if status == "killed" else "equivalent"
        results.append((m, status, killers))
        print("%3d %-12s %5.0fs  %-24s %s%s" % (
            m["id"], status, time.time() - t1, m["file"], m["why"],
            "  <- " + ", ".join(k.split(" / ")[-1] for k in killers)
            if killers else ""), flush=True)
        if detail:
            print(detail, file=sys.stderr)
    run(["ninja", "-C", build])

    counted = [x for x in results if not x[0]["equivalent"]]
    killed = [x for x in counted if x[1] == "killed"]
    golden = [x for x in counted if x[1] == "golden"]
    survived = [x for x in counted if x[1] == "SURVIVED"]
    broken = [x for x in results if x[1] == "NOCOMPILE"]
    wrong_eq = [x for x in results if x[1] == "equiv-KILLED"]
    rate = 100.0 * len(killed) / len(counted) if counted else 100.0
    rate_g = 100.0 * (len(killed) + len(golden)) / len(counted) \
        if counted else 100.0
    named = [x for x in results if "survivor" in x[0]["tags"]]
    lines = [
        "",
        "mutants: %d, equivalent %d, counted %d" % (
            len(results), len(results) - len(counted), len(counted)),
        "killed by the unit suites: %d of %d = %.1f%%" % (
            len(killed), len(counted), rate),
    ]
    if a.golden:
        lines.append("killed with the golden digest too: %d of %d = %.1f%%"
                     % (len(killed) + len(golden), len(counted), rate_g))
    for x in survived + golden:
        lines.append("  %s %d: %s: %s" % (
            "survived" if x[1] == "SURVIVED" else "golden only",
            x[0]["id"], x[0]["file"], x[0]["why"]))
    if named:
        lines.append("issue 13's survivors: " + ", ".join(
            "%d %s" % (x[0]["id"], x[1]) for x in named))
    for x in wrong_eq:
        lines.append("  marked equivalent but killed %d: %s (check the "
                     "claim)" % (x[0]["id"], x[0]["why"]))
    for x in broken:
        lines.append("  does not compile %d: %s" % (x[0]["id"],
                                                     x[0]["why"]))
    lines.append("time: %.0f s" % (time.time() - t0))
    print("\n".join(lines))
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            for m, status, killers in results:
                f.write("%d\t%s\t%s\t%s\t%s\n" % (
                    m["id"], status, m["file"], m["why"],
                    ",".join(k.split(" / ")[-1] for k in killers)))
            f.write("\n".join(lines) + "\n")
    if broken or wrong_eq:
        return 2
    ok = rate >= a.min_rate and all(
        x[1] in ("killed", "equivalent") for x in named)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
