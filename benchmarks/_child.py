"""Child process of the benchmark runner: one backend, one task.

Usage (by `run.py` only): `python benchmarks/_child.py SPEC_JSON`. The spec
names the backend, the task and the file `out` to append records to, one
JSON line each as they happen (stdout is left to library logs):

* task "memory": the peak-RSS increase of `contender` in `job`; one record
  ``{"result": ...}``;
* task "time": each configuration of `jobs` in turn, in this one process, so
  the imports are paid once. Before a job, ``{"start": index}``; after it,
  ``{"index": index, "result": {contender: ...}}``. The parent restarts its
  time cap at each record and keeps the jobs done if this process dies.
  `failed` ({series: {contender: failure}}) lists the contenders not to run
  again in a series; the jobs' own failures are added as they happen.

A job is one configuration: `index`, suite `module`, `mode`, `params`,
`contenders`, `series`, `warmup` and `repeats`.
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
# The working tree, not an installed copy, is what gets measured.
sys.path.insert(0, REPO)

from benchmarks._runner import not_run, note_failures  # noqa: E402


def main():
    spec = json.loads(sys.argv[1])
    backend = spec["backend"]
    os.environ["KERAS_BACKEND"] = backend
    set_threads(backend, spec["threads"])
    with open(spec["out"], "a") as out:
        def record(**fields):
            out.write(json.dumps(fields) + "\n")
            out.flush()

        if spec["task"] == "memory":
            job = spec["job"]
            record(result=measure_memory(
                builder(backend, job), spec["contender"], job["warmup"]))
        else:
            run_jobs(backend, spec["jobs"], spec["failed"], record)


def builder(backend, job):
    suite = importlib.import_module(job["module"])
    return lambda contender: suite.build(
        contender, backend, job["mode"], job["params"])


def run_jobs(backend, jobs, failed, record):
    for job in jobs:
        record(start=job["index"])
        earlier = failed.get(job["series"], {})
        result = {name: {"status": not_run(earlier[name])}
                  for name in job["contenders"] if name in earlier}
        timed = [name for name in job["contenders"] if name not in earlier]
        try:
            result.update(time_contenders(
                builder(backend, job), timed, job["warmup"], job["repeats"]))
        except Exception as exc:  # e.g. the suite module fails to import
            result.update({name: {"status": error(exc)} for name in timed})
        note_failures(failed, job["series"],
                      {name: r["status"] for name, r in result.items()})
        record(index=job["index"], result=result)


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
    """Peak-RSS increase (MiB) of `warmup` calls over the RSS before them,
    and the wall time of each call.

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
        calls_ms = []
        for _ in range(warmup):
            start = time.perf_counter()
            step()
            calls_ms.append((time.perf_counter() - start) * 1e3)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception as exc:
        return {"status": error(exc)}
    return {
        "status": "ok",
        "peak_rss_mib": (after - before) / 1024,  # ru_maxrss is in KiB
        "baseline": baseline_method,
        # The parent sizes the timing child's calls from these.
        "calls_ms": calls_ms,
    }


if __name__ == "__main__":
    main()
