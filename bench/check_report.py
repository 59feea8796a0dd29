#!/usr/bin/env python3
"""check_report.py AKBENCH COMPARE WORKDIR — CTest check of akbench's reports.

Runs akbench on a tiny configuration with --json and --svg, then checks:
  * the JSON parses, has the schema's fields and machine facts, one result
    per scheme and thread count, one sample per repetition, medians that are
    the median of the samples, and a baseline ratio of 1 for the baseline;
  * each SVG is well-formed XML with exactly one <polyline> per measured
    scheme, one point per thread count, every point inside the plot, a
    legend naming every scheme, and a y axis that maps a higher median to a
    higher point (the chart is not upside down or scrambled);
  * bad arguments are refused with status 2 and unwritable outputs with 1,
    before anything is measured;
  * bench/compare reports 1.000 for a file against itself and 2.000 for a
    copy whose medians were doubled.
Exit status 0 on success, 1 with a message on the first failure.
"""
import copy
import json
import os
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
THREADS = [1, 2]
REPS = 3


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(cmd, timeout=60):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("timed out: " + " ".join(cmd))
    return p


def check_json(path):
    with open(path) as f:
        doc = json.load(f)  # raises on malformed JSON: the test fails
    check(doc.get("schema") == "akbench/1", "schema is not akbench/1")
    for k in ("git_revision", "date", "atomkit_version"):
        check(isinstance(doc.get(k), str) and doc[k], f"missing {k}")
    m = doc.get("machine", {})
    for k in ("cpu_model", "kernel", "compiler", "clocksource", "build_type"):
        check(isinstance(m.get(k), str) and m[k], f"machine.{k} missing or empty")
    check(isinstance(m.get("ncpu"), int) and m["ncpu"] >= 1, "machine.ncpu")
    mb = m.get("membarrier", {})
    check(isinstance(mb.get("available"), bool), "machine.membarrier.available")
    check(mb["available"] == (mb.get("query_mask", -1) >= 0), "membarrier mask vs available")
    check(doc["options"]["threads"] == THREADS, "options.threads")
    check(doc["options"]["reps"] == REPS, "options.reps")
    check(isinstance(doc.get("elapsed_s"), (int, float)), "elapsed_s")
    check(len(doc["scenarios"]) >= 1, "no scenarios")
    for sc in doc["scenarios"]:
        name = sc["name"]
        check(sc["threads"] == THREADS, f"{name}: threads")
        schemes = sc["schemes"]
        check(len(schemes) >= 1, f"{name}: no schemes")
        check(len(sc["results"]) == len(schemes) * len(THREADS), f"{name}: result count")
        seen = set()
        for r in sc["results"]:
            key = (r["scheme"], r["threads"])
            check(key not in seen, f"{name}: duplicate result {key}")
            seen.add(key)
            check(r["scheme"] in schemes and r["threads"] in THREADS, f"{name}: stray result {key}")
            s = r["ops_per_s"]
            want = sc.get("reps", REPS)  # a scenario may ask for more (min_reps)
            check(want >= REPS, f"{name}: reps {want} below --reps {REPS}")
            check(len(s) == want, f"{name} {key}: {len(s)} samples, want {want}")
            check(all(isinstance(v, (int, float)) and v > 0 for v in s), f"{name} {key}: samples {s}")
            check(abs(r["median"] - statistics.median(s)) <= 0.1 + 1e-9 * r["median"],
                  f"{name} {key}: median {r['median']} is not the median of {s}")
            check(abs(r["min"] - min(s)) <= 0.1 and abs(r["max"] - max(s)) <= 0.1, f"{name} {key}: min/max")
            check(abs(r["ns_per_op"] - r["threads"] * 1e9 / r["median"]) <= 1e-3 * r["ns_per_op"] + 1e-3,
                  f"{name} {key}: ns_per_op")
            if sc["baseline"] and r["scheme"] == sc["baseline"]:
                check(abs(r["vs_baseline"] - 1) < 1e-9, f"{name}: baseline ratio {r['vs_baseline']}")
        for p in sc.get("pairs", []):
            check(len(p["median_ratio"]) == len(THREADS), f"{name}: pair {p['label']}")
    return doc


def parse_points(s):
    pts = []
    for tok in s.split():
        x, y = tok.split(",")
        pts.append((float(x), float(y)))
    return pts


def check_svg(path, sc):
    tree = ET.parse(path)  # raises on malformed XML: the test fails
    root = tree.getroot()
    check(root.tag == SVG + "svg", f"{path}: root is {root.tag}")
    w, h = float(root.get("width")), float(root.get("height"))
    polys = list(root.iter(SVG + "polyline"))
    schemes = sc["schemes"]
    check(len(polys) == len(schemes),
          f"{path}: {len(polys)} polylines for {len(schemes)} schemes")
    # The frame: the first rect with fill none.
    frame = [r for r in root.iter(SVG + "rect") if r.get("fill") == "none"][0]
    fx, fy = float(frame.get("x")), float(frame.get("y"))
    fw, fh = float(frame.get("width")), float(frame.get("height"))
    by_scheme = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "series":
            pl = g.findall(SVG + "polyline")
            check(len(pl) == 1, f"{path}: series {g.get('data-scheme')} has {len(pl)} polylines")
            by_scheme[g.get("data-scheme")] = parse_points(pl[0].get("points"))
    check(sorted(by_scheme) == sorted(schemes), f"{path}: series {sorted(by_scheme)} != {sorted(schemes)}")
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"]
    check(len(legend) == 1, f"{path}: legend")
    texts = {t.text for t in legend[0].iter(SVG + "text")}
    for s in schemes:
        check(s in texts, f"{path}: legend lacks {s}")
    med = {(r["scheme"], r["threads"]): r["median"] for r in sc["results"]}
    ys = []
    for s, pts in by_scheme.items():
        check(len(pts) == len(THREADS), f"{path}: {s} has {len(pts)} points")
        xs = [p[0] for p in pts]
        check(xs == sorted(xs) and len(set(xs)) == len(xs), f"{path}: {s} x not increasing")
        for (x, y), t in zip(pts, sorted(THREADS)):
            check(fx <= x <= fx + fw and fy <= y <= fy + fh, f"{path}: {s} point {x},{y} outside the plot")
            check(0 <= x <= w and 0 <= y <= h, f"{path}: point outside the canvas")
            ys.append((med[(s, t)], y, s, t))
    # Higher median -> smaller y (SVG y grows downwards), for every pair of
    # points that differ by more than the rounding of the coordinates.
    for a in ys:
        for b in ys:
            if a[0] > b[0] * 1.05:
                check(a[1] <= b[1] + 0.1, f"{path}: {a[2]}@{a[3]} ({a[0]:.0f}) drawn below "
                      f"{b[2]}@{b[3]} ({b[0]:.0f})")


def table_rows(out, doc):
    """compare's table lines: scheme, threads, old, new, ratio."""
    schemes = set(doc["scenarios"][0]["schemes"])
    return [l for l in out.splitlines()
            if len(l.split()) == 5 and l.split()[0] in schemes and l.split()[1].isdigit()]


def main():
    akbench, compare, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    svgdir = os.path.join(work, "svg")
    jpath = os.path.join(work, "out", "results.json")  # parent created by akbench
    for stale in (jpath,):
        if os.path.exists(stale):
            os.remove(stale)
    cmd = [akbench, "--scenario", "counter", "--threads", ",".join(map(str, THREADS)),
           "--duration", "0.02", "--reps", str(REPS), "--svg", svgdir, "--json", jpath]
    p = run(cmd)
    check(p.returncode == 0, f"akbench exited {p.returncode}: {p.stderr}")
    doc = check_json(jpath)
    for sc in doc["scenarios"]:
        check_svg(os.path.join(svgdir, sc["name"] + ".svg"), sc)
    print(f"ok: JSON and {len(doc['scenarios'])} SVG chart(s) check out")

    # Refusals: bad arguments exit 2, unwritable outputs exit 1, both fast.
    for bad in (["--threads", "0"], ["--threads", "4..2"], ["--threads", "1,x"], ["--reps", "0"],
                ["--duration", "-1"], ["--budget", "abc"], ["--scenario", "no-such"], ["--json"],
                ["--bogus", "1"]):
        p = run([akbench] + bad, timeout=10)  # refused before measuring, or times out
        check(p.returncode == 2, f"akbench {' '.join(bad)}: exit {p.returncode}, want 2")
    blocker = os.path.join(work, "a-file")
    open(blocker, "w").close()
    for bad in (["--svg", os.path.join(blocker, "sub")], ["--json", os.path.join(blocker, "x.json")],
                ["--json", work]):
        p = run([akbench, "--scenario", "counter", "--threads", "1", "--duration", "5"] + bad, timeout=10)
        check(p.returncode == 1, f"akbench {' '.join(bad)}: exit {p.returncode}, want 1")
    print("ok: bad arguments and unwritable outputs are refused")

    # compare: itself -> 1.000 everywhere; doubled medians -> 2.000.
    p = run([sys.executable, compare, jpath, jpath])
    check(p.returncode == 0, f"compare exited {p.returncode}: {p.stderr}")
    rows = table_rows(p.stdout, doc)
    check(len(rows) == len(doc["scenarios"][0]["results"]), f"compare printed {len(rows)} rows")
    check(all(l.split()[-1].rstrip("~") == "1.000" for l in rows), "compare of a file with itself is not 1.000")
    fast = copy.deepcopy(doc)
    for sc in fast["scenarios"]:
        for r in sc["results"]:
            for k in ("median", "min", "max"):
                r[k] *= 2
            r["ops_per_s"] = [v * 2 for v in r["ops_per_s"]]
    fpath = os.path.join(work, "doubled.json")
    with open(fpath, "w") as f:
        json.dump(fast, f)
    p = run([sys.executable, compare, jpath, fpath])
    check(p.returncode == 0, f"compare exited {p.returncode}")
    rows = table_rows(p.stdout, doc)
    check(rows and all(l.split()[-1].rstrip("~") == "2.000" for l in rows), "doubled medians not reported as 2.000")
    p = run([sys.executable, compare, jpath, blocker])
    check(p.returncode != 0, "compare accepted a non-JSON file")
    print("ok: bench/compare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
