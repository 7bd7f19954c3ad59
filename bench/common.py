"""Timing helpers shared by the benchmarks: ours and a reference, timed in turn."""
import statistics
import time


def compare_ms(ours, reference, repeats=7, warmup=2):
    """Median times in ms of `ours` and `reference`, run in turn:
    on a shared machine the speed drifts over seconds, and alternating the
    two keeps that drift out of their ratio."""
    fns = [ours, reference]
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [1000 * statistics.median(spent) for spent in times]


def record(name, ms, reference=None, reference_ms=None):
    """One row of runs/bench.json; ratio = ours / reference (lower is better)."""
    ratio = ms / reference_ms if reference_ms else None
    return {"name": name, "ms": round(ms, 3), "reference": reference,
            "reference_ms": None if reference_ms is None else round(reference_ms, 3),
            "ratio": None if ratio is None else round(ratio, 3)}
