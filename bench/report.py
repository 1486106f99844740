"""Print a ratio table per benchmark group from pytest-benchmark's JSON.

``make bench`` runs ``pytest bench --benchmark-only --benchmark-json=.benchmarks/last.json``
and then this script (``python bench/report.py [path.json]``).

Convention for every suite in ``bench/`` (bench_schedules.py, bench_updates.py,
bench_simulate.py, ...):

- ``benchmark.group``: the comparison a row belongs to (one table per group).
- ``benchmark.extra_info["impl"]``: ``"fastdecay"`` for the implementation under test
  (exactly one per group, or several named ``"fastdecay..."``; the first plain
  ``"fastdecay"`` is the reference row), any other name for a baseline (``"numpy"``,
  ``"torch"``, ``"torch-foreach"``, ...), and ``"ceiling:<how>"`` for a measurement of
  what the machine can do at best (a bandwidth ceiling).
- ``extra_info["gbps"]``: GB/s moved (bytes written + read, 1e9 bytes), from the median.
- ``extra_info["steps_per_s"]``: elements or trajectory-steps per second, from the median.
- ``extra_info["ceiling_gbps"]``: optional, a ceiling the benchmark measured itself.
- ``extra_info["fraction_of_ceiling"]``: optional, the implementation's speed as a
  fraction of a ceiling timed in turns with it (robust to a shared machine's drift).
- ``extra_info["device_median_s"]``: optional (GPU suites), the median device time of the
  same call from CUDA events; ``gbps`` and ``steps_per_s`` then come from it.
- ``extra_info["scale"]``: optional (default 1), full-size work / measured work, for a
  baseline timed on a subset (stepping torch schedulers, say): its median times
  ``scale`` is compared with the full-size fastdecay median.

For each group the table lists every row's median, the time scaled to full size,
fastdecay's speed-up over it (``x faster``: scaled baseline time / fastdecay time),
GB/s, steps/s, and fastdecay's GB/s as a fraction of the best ceiling in the group.
"""

import json
import sys
from pathlib import Path

DEFAULT = Path(".benchmarks/last.json")


def _fmt_time(seconds):
    if seconds is None:
        return "-"
    for unit, factor in (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if seconds * factor >= 1.0:
            return f"{seconds * factor:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _fmt(x, spec):
    if x is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 0)
    return format(x, spec)


def rows_by_group(data):
    groups = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        stats = b.get("stats") or {}
        groups.setdefault(b.get("group") or "(no group)", []).append(
            {
                "name": b.get("name", "?"),
                "impl": info.get("impl", b.get("name", "?")),
                "median": stats.get("median"),
                "scale": float(info.get("scale", 1.0)),
                "gbps": info.get("gbps"),
                "steps_per_s": info.get("steps_per_s"),
                "ceiling_gbps": info.get("ceiling_gbps"),
                "fraction_of_ceiling": info.get("fraction_of_ceiling"),
                "device_median": info.get("device_median_s"),
            }
        )
    return groups


def report(data, out=sys.stdout):
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw") or machine.get("processor", "")
    print(f"# benchmark report  ({data.get('datetime', '')}, {machine.get('node', '')}, {cpu})", file=out)
    for group, rows in sorted(rows_by_group(data).items()):
        ours = next((r for r in rows if r["impl"] == "fastdecay"), None)
        ours = ours or next((r for r in rows if str(r["impl"]).startswith("fastdecay")), None)
        ceilings = [r["gbps"] for r in rows if str(r["impl"]).startswith("ceiling") and r["gbps"]]
        ceilings += [r["ceiling_gbps"] for r in rows if r["ceiling_gbps"]]
        ceiling = max(ceilings) if ceilings else None
        print(f"\n## {group}", file=out)
        header = f"{'impl':<24} {'median':>10} {'full size':>10} {'x faster':>9} {'GB/s':>7} {'steps/s':>10}  name"
        print(header, file=out)
        print("-" * len(header), file=out)
        for r in sorted(rows, key=lambda r: (r is not ours, (r["median"] or 0) * r["scale"])):
            full = None if r["median"] is None else r["median"] * r["scale"]
            ratio = None
            if ours is not None and ours["median"] and full:
                ratio = full / ours["median"]
            print(
                f"{str(r['impl']):<24} {_fmt_time(r['median']):>10} {_fmt_time(full):>10} "
                f"{_fmt(ratio, '9.3g')} {_fmt(r['gbps'], '7.2f')} {_fmt(r['steps_per_s'], '10.3g')}  {r['name']}",
                file=out,
            )
        if ours is not None and ours["gbps"] and ceiling:
            print(
                f"fastdecay at {ours['gbps']:.2f} GB/s = {100 * ours['gbps'] / ceiling:.0f}% "
                f"of the best measured ceiling ({ceiling:.2f} GB/s)",
                file=out,
            )
        if ours is not None and ours["device_median"]:
            # GPU suites: the same calls timed with CUDA events (device time, no host overhead)
            print("device time (CUDA events, median):", file=out)
            for r in sorted(rows, key=lambda r: (r is not ours, r["device_median"] or 0)):
                if r["device_median"]:
                    ratio = r["device_median"] / ours["device_median"]
                    print(f"  {str(r['impl']):<22} {_fmt_time(r['device_median']):>10} {ratio:9.3g}x", file=out)
        if ours is not None and ours["fraction_of_ceiling"]:
            print(
                f"fastdecay timed in turns with the ceiling: {100 * ours['fraction_of_ceiling']:.0f}% of it",
                file=out,
            )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DEFAULT
    if not path.exists():
        print(f"no benchmark results at {path}; run `make bench` (pytest --benchmark-json={path})", file=sys.stderr)
        return 1
    report(json.loads(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
