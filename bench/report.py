"""Print pytest-benchmark JSON files of bench/ as the Markdown tables of bench/README.md.

    python bench/report.py bench/last-1thread.json [bench/last-2threads.json ...]

For each thread count: one row per workload with fastgd's median and each peer's median with,
in brackets, the peer's median divided by fastgd's (above 1 means fastgd is faster), fastgd's
GFLOP/s and the thread count; then the GEMM rate and the share of it that W3 and W5 reach, the
peers' configurations, and the scaling table. A file may hold any part of the suite; a later
file's figure replaces an earlier one's for the same benchmark and thread count. Files written
before the workloads existed print as they did then. JSON only, no dependencies.
"""

import json
import sys
from collections import defaultdict

PEERS = ["numpy", "torch", "sklearn", "onnxruntime"]
NAMES = {"numpy": "NumPy twin", "torch": "PyTorch", "sklearn": "scikit-learn", "onnxruntime": "ONNX Runtime"}


def main(paths):
    runs = defaultdict(lambda: {"workloads": defaultdict(dict), "scaling": defaultdict(dict), "callers": {}, "gemm": None})
    about = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        legacy = [bench for bench in data["benchmarks"] if "workload" not in bench.get("extra_info", {})]
        if legacy:
            legacy_table(path, data, legacy)
        for bench in data["benchmarks"]:
            info = bench.get("extra_info", {})
            if "workload" not in info:
                continue
            run = runs[info.get("threads", "?")]
            about[info.get("threads", "?")] = data
            if info["workload"] == "GEMM":
                run["gemm"] = bench
            elif info.get("scaling"):
                run["scaling"][info["workload"]][info["samples"]] = bench
            elif "python_threads" in info:
                run["callers"][info["python_threads"]] = bench
            else:
                run["workloads"][info["workload"]][info["engine"]] = bench
    for threads in sorted(runs, key=str):
        print_run(threads, runs[threads], about[threads])


def print_run(threads, run, data):
    print(f"\n### {threads} thread{'s' if threads != 1 else ''}\n")
    print(describe(data) + "\n")
    workloads = run["workloads"]
    peers = [p for p in PEERS if any(p in engines for engines in workloads.values())]
    if workloads:
        print("| workload | fastgd | " + " | ".join(f"{NAMES[p]} (÷ fastgd)" for p in peers) + " | fastgd GFLOP/s | threads |")
        print("|---|---|" + "---|" * len(peers) + "---|---|")
        for key in sorted(workloads):
            engines = workloads[key]
            fast = engines.get("fastgd")
            base = fast["stats"]["median"] if fast else None
            cells = [peer_cell(engines.get(peer), base) for peer in peers]
            group = next(iter(engines.values()))["group"]
            rate = gflops(fast)
            print(f"| {group} | {format_time(base) if fast else '–'} | " + " | ".join(cells)
                  + f" | {'' if rate is None else f'{rate:.1f}'} | {threads} |")
    gemm = run["gemm"]
    if gemm and gflops(gemm):
        rate = gflops(gemm)
        line = f"\nGEMM rate ({gemm['extra_info'].get('note', 'NumPy float32')}): {rate:.1f} GFLOP/s"
        shares = [f"{key} reached {gflops(workloads[key]['fastgd']) / rate:.0%} of it ({gflops(workloads[key]['fastgd']):.1f} GFLOP/s)"
                  for key in ("W3", "W5") if "fastgd" in workloads.get(key, {}) and gflops(workloads[key]["fastgd"])]
        print(line + ("; fastgd's " + ", ".join(shares) if shares else "") + ".")
    notes = [(key, engine, bench["extra_info"]) for key in sorted(workloads) for engine, bench in workloads[key].items()]
    accuracies = defaultdict(list)
    for key, engine, info in notes:
        if "accuracy" in info:
            accuracies[key].append(f"{NAMES.get(engine, engine)} {info['accuracy']:.2%}")
    if accuracies:
        print("\nTest accuracy after the last timed epoch: " + "; ".join(f"{key}: {', '.join(v)}" for key, v in accuracies.items()) + ".")
    remarks = [f"- {key} {NAMES.get(engine, engine)}: {info['note']}" for key, engine, info in notes if info.get("note")]
    if remarks:
        print("\n" + "\n".join(remarks))
    if run["scaling"]:
        print_scaling(run["scaling"])
    callers = run["callers"]
    if callers:
        times = {n: bench["stats"]["median"] for n, bench in callers.items()}
        text = ", ".join(f"{n} Python thread{'s' if n != 1 else ''} {format_time(t)}" for n, t in sorted(times.items()))
        speedup = f" ({times[1] / times[2]:.2f}×)" if 1 in times and 2 in times else ""
        print(f"\n{next(iter(callers.values()))['group']}: {text}{speedup}.")


def print_scaling(scaling):
    print("\n| workload | images | epoch | µs per image | fastgd GFLOP/s | peak RSS growth | data |")
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for key in sorted(scaling):
        by_size = scaling[key]
        for n in sorted(by_size):
            bench = by_size[n]
            info, seconds = bench["extra_info"], bench["stats"]["median"]
            growth = f"{info['rss_growth'] / 2**20:.1f} MiB" if "rss_growth" in info else ""
            data = f"{info['data_bytes'] / 2**20:.0f} MiB" if "data_bytes" in info else ""
            rate = gflops(bench)
            print(f"| {key} | {n:,} | {format_time(seconds)} | {seconds / n * 1e6:.1f} | {'' if rate is None else f'{rate:.1f}'} | {growth} | {data} |")
        small, large = min(by_size), max(by_size)
        if small != large:
            ratio = (by_size[large]["stats"]["median"] / large) / (by_size[small]["stats"]["median"] / small)
            verdict = f"{key}: time per image at {large:,} images / at {small:,} = {ratio:.2f} (1 is linear)"
            a, b = by_size[small]["extra_info"].get("rss_growth"), by_size[large]["extra_info"].get("rss_growth")
            if a and b:
                verdict += f"; peak RSS growth {b / 2**20:.1f} MiB against {a / 2**20:.1f} MiB ({b / a - 1:+.0%})"
            verdicts.append(verdict)
    if verdicts:
        print("\n" + "\n".join(f"- {v}" for v in verdicts))


def describe(data):
    """One line on what ran: fastgd's build, the peers' versions, the machine."""
    meta, info = data.get("fastgd", {}), data["machine_info"]
    versions = ", ".join(f"{name} {version}" for name, version in meta.get("versions", {}).items())
    build = f"fastgd {meta['version']} ({meta.get('isa')} engine), {versions}; " if meta else ""
    return f"{build}{info.get('cpu', {}).get('brand_raw', '?')}, Python {info['python_version']}, {data['datetime'][:10]}"


def peer_cell(bench, base):
    if not bench:
        return "–"
    seconds = bench["stats"]["median"]
    return format_time(seconds) + (f" ({seconds / base:.2f}×)" if base else "")


def gflops(bench):
    return bench.get("extra_info", {}).get("gflops") if bench else None


def legacy_table(path, data, benchmarks):
    """The table of the suite before the workloads: one row per group, engines as columns."""
    groups = defaultdict(dict)
    for bench in benchmarks:
        engine = bench["params"].get("engine") or f"{bench['params'].get('python_threads')} Python thread(s)"
        groups[bench["group"]][engine] = bench
    peers = [p for p in PEERS if any(p in engines for engines in groups.values())]
    print(f"\n### {path}\n")
    print("| benchmark | fastgd | " + " | ".join(f"{NAMES[p]} (fastgd speed-up)" for p in peers) + " | fastgd GFLOP/s |")
    print("|---|---|" + "---|" * len(peers) + "---|")
    for group, engines in groups.items():
        fast = engines.get("fastgd")
        if not fast:
            print(f"| {group} | " + " | ".join(f"{k}: {format_time(v['stats']['median'])}" for k, v in engines.items()) + " |")
            continue
        base = fast["stats"]["median"]
        rate = gflops(fast)
        print(f"| {group} | {format_time(base)} | " + " | ".join(peer_cell(engines.get(p), base) for p in peers)
              + f" | {'' if rate is None else f'{rate:.1f}'} |")
    print("\n" + describe(data))


def format_time(seconds):
    if seconds >= 0.1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-4:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: python {sys.argv[0]} RESULTS.json [MORE.json ...]")
    main(sys.argv[1:])
