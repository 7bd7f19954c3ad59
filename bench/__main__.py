"""`make bench`: every benchmark, as ratios measured in one run.

Ratios (ours / reference, lower is better) are what to compare: absolute
times on a shared 2-core machine are noisy. BLAS is pinned to one thread by
the Makefile, because matmuls this small get slower with more threads.
Results also go to runs/bench.json. `MICROSEQ_FAST=0 make bench` measures
the plain path, every speed device off (see microseq.fast).
"""
import argparse
import importlib
import json
import os
from pathlib import Path

from microseq import fast

SUITES = ["bench.bench_scalar", "bench.bench_tensor", "bench.bench_word2vec",
          "bench.bench_seq2seq", "bench.bench_transformer"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="runs/bench.json")
    args = parser.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"BLAS threads: {threads} (tiny matmuls get slower with more threads)")
    tuned = fast.keep_freed_memory()
    print(f"speed devices: {'on' if fast.enabled() else 'off (MICROSEQ_FAST=0)'}, "
          f"allocator tuned: {tuned}")
    rows = []
    for name in SUITES:
        for row in importlib.import_module(name).run(args.repeats):
            rows.append(row)
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
            ref = f"{row['reference_ms']:.2f} ms  {row['reference']}" if row["reference"] else ""
            print(f"{row['name']:<48} {row['ms']:>9.2f} ms  {ratio:>7}  {ref}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
