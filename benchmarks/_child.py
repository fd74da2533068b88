"""Child process of the benchmark runner: one configuration, one backend.

Usage (by `run.py` only): `python benchmarks/_child.py SPEC_JSON`. The spec
says which suite module, backend, mode, params and contenders to run, the
task ("time" or "memory"), and the file to write the result JSON to (stdout
is left to library logs).
"""

import gc
import importlib
import json
import os
import resource
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    spec = json.loads(sys.argv[1])
    # The working tree, not an installed copy, is what gets measured.
    sys.path.insert(0, REPO)
    os.environ["KERAS_BACKEND"] = spec["backend"]
    set_threads(spec["backend"], spec["threads"])
    suite = importlib.import_module(spec["module"])

    def build(contender):
        return suite.build(
            contender, spec["backend"], spec["mode"], spec["params"]
        )

    if spec["task"] == "time":
        result = time_contenders(
            build, spec["contenders"], spec["warmup"], spec["repeats"]
        )
    else:
        result = measure_memory(build, spec["contenders"][0], spec["warmup"])
    with open(spec["out"], "w") as f:
        json.dump(result, f)


def set_threads(backend, threads):
    """Intra-op pools use `threads` cores; inter-op parallelism is off.

    Two pools of `threads` each would oversubscribe the cores and add noise.
    JAX has no thread setting: XLA:CPU sizes its pool to the machine's cores.
    """
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)


def error(exc):
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"error: {type(exc).__name__}: {first_line}"[:160]


def time_contenders(build, contenders, warmup, repeats):
    """Median per-call wall time of each contender, timed round-robin.

    Alternating contenders spreads slow drifts (thermal, other load) over all
    of them instead of penalising whichever ran last; each round starts one
    contender later so none always has the same neighbour before it.
    """
    steps, results = {}, {}
    for name in contenders:
        try:
            step = build(name)
            warm = []
            for _ in range(warmup):
                start = time.perf_counter()
                step()
                warm.append((time.perf_counter() - start) * 1e3)
            steps[name] = step
            results[name] = {"warmup_ms": warm, "times_ms": []}
        except Exception as exc:
            results[name] = {"status": error(exc)}

    gc.collect()
    gc.disable()  # as timeit does: a collection would land on one contender
    order = list(steps)
    for _ in range(repeats):
        for name in list(order):
            try:
                start = time.perf_counter()
                steps[name]()
                results[name]["times_ms"].append(
                    (time.perf_counter() - start) * 1e3
                )
            except Exception as exc:
                order.remove(name)
                results[name]["status"] = error(exc)
        order = order[1:] + order[:1]
    gc.enable()

    for result in results.values():
        if "status" not in result:
            result["status"] = "ok"
            result["median_ms"] = statistics.median(result["times_ms"])
    return results


def measure_memory(build, contender, warmup):
    """Peak-RSS increase (MiB) of `warmup` calls over the RSS before them.

    Imports, inputs and the built step are in the baseline. Where Linux lets
    us, the high-water mark is reset to the current RSS first (clear_refs 5),
    so an earlier transient peak (an import, a temporary input) cannot hide
    the step's; otherwise the baseline is the peak so far.
    """
    try:
        step = build(contender)
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            baseline_method = "current RSS (high-water mark reset)"
        except OSError:
            baseline_method = "peak RSS so far"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(warmup):
            step()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception as exc:
        return {"status": error(exc)}
    return {
        "status": "ok",
        "peak_rss_mib": (after - before) / 1024,  # ru_maxrss is in KiB
        "baseline": baseline_method,
    }


if __name__ == "__main__":
    main()
