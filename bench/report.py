"""Print a pytest-benchmark JSON file as the Markdown table of bench/README.md."""

import json
import sys
from collections import defaultdict


def main(path):
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        engine = bench["params"]["engine"]
        groups[bench["group"]][engine] = bench
    print("| benchmark | fastgd median | NumPy twin median | fastgd speed-up | fastgd GFLOP/s |")
    print("|---|---|---|---|---|")
    for group, engines in groups.items():
        fast, twin = engines.get("fastgd"), engines.get("numpy")
        if not fast or not twin:
            continue
        f_med, t_med = fast["stats"]["median"], twin["stats"]["median"]
        gflops = fast.get("extra_info", {}).get("gflops")
        print(
            f"| {group} | {format_time(f_med)} | {format_time(t_med)} | {t_med / f_med:.2f}× | "
            f"{'' if gflops is None else f'{gflops:.1f}'} |"
        )
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
