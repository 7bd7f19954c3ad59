"""Timing helpers shared by the benchmarks: median of repeats after a warm-up."""
import statistics
import time


def median_ms(fn, repeats=7, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def record(name, ms, reference=None, reference_ms=None):
    """One row of runs/bench.json; ratio = ours / reference (lower is better)."""
    ratio = ms / reference_ms if reference_ms else None
    return {"name": name, "ms": round(ms, 3), "reference": reference,
            "reference_ms": None if reference_ms is None else round(reference_ms, 3),
            "ratio": None if ratio is None else round(ratio, 3)}
