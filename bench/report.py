"""Print a pytest-benchmark JSON file as the Markdown table of bench/README.md."""

import json
import sys
from collections import defaultdict


def main(path):
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        engine = bench["params"].get("engine") or f"{bench['params'].get('python_threads')} Python thread(s)"
        groups[bench["group"]][engine] = bench
    peers = [p for p in ("numpy", "onnxruntime", "torch") if any(p in engines for engines in groups.values())]
    names = {"numpy": "NumPy twin", "onnxruntime": "ONNX Runtime", "torch": "PyTorch"}
    print("| benchmark | fastgd | " + " | ".join(f"{names[p]} (fastgd speed-up)" for p in peers) + " | fastgd GFLOP/s |")
    print("|---|---|" + "---|" * len(peers) + "---|")
    for group, engines in groups.items():
        fast = engines.get("fastgd")
        if not fast:
            print(f"| {group} | " + " | ".join(f"{k}: {format_time(v['stats']['median'])}" for k, v in engines.items()) + " |")
            continue
        f_med = fast["stats"]["median"]
        cells = []
        for peer in peers:
            other = engines.get(peer)
            cells.append("–" if not other else f"{format_time(other['stats']['median'])} ({other['stats']['median'] / f_med:.2f}×)")
        gflops = fast.get("extra_info", {}).get("gflops")
        print(f"| {group} | {format_time(f_med)} | " + " | ".join(cells) + f" | {'' if gflops is None else f'{gflops:.1f}'} |")
    info = data["machine_info"]
    print(f"\n{info.get('cpu', {}).get('brand_raw', '?')}, Python {info['python_version']}, {data['datetime'][:10]}")


def format_time(seconds):
    if seconds >= 0.1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-4:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


if __name__ == "__main__":
    main(sys.argv[1])
