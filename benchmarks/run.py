"""The shared benchmark runner of safeloss; see benchmarks/README.md.

    python benchmarks/run.py [--quick|--full] [--suite NAME ...]
        [--backend tensorflow jax torch] [--json PATH] [--markdown PATH]
        [--repeats N] [--time-cap S] [--mem-cap-gib G] [--no-memory]

This parent process never imports keras or a backend: each configuration
runs in child processes that choose their backend, and a small parent keeps
the children's RSS baseline clean (a child inherits its parent's peak RSS).
"""

import argparse
import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)

from benchmarks._report import (  # noqa: E402
    THREADS, caption, finish_report, start_report)
from benchmarks._runner import BACKENDS  # noqa: E402

CHILD = os.path.join(BENCH, "_child.py")
WARMUP = 3
REPEATS = {"quick": 15, "full": 30}
POLL_S = 0.2


def parse_args(argv):
    total_gib = psutil.virtual_memory().total / 2**30
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const",
                      const="quick", help="small sizes, 15 repeats (default)")
    size.add_argument("--full", dest="size", action="store_const",
                      const="full", help="full sizes, 30 repeats")
    p.set_defaults(size="quick")
    p.add_argument("--suite", nargs="+", metavar="NAME",
                   help="suites to run (default: all)")
    p.add_argument("--backend", nargs="+", choices=BACKENDS,
                   default=list(BACKENDS),
                   help="backends to run (default: all)")
    p.add_argument("--json", metavar="PATH", help="write all results here")
    p.add_argument("--markdown", metavar="PATH", help="write the table here")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed calls per contender "
                   "(default: 15 quick, 30 full)")
    p.add_argument("--time-cap", type=float, default=600.0, metavar="S",
                   help="wall-time limit of each child process (default 600)")
    p.add_argument("--mem-cap-gib", type=float,
                   default=round(0.75 * total_gib, 1), metavar="G",
                   help="RSS limit of each child process "
                   "(default: 75%% of total memory, %(default)s)")
    p.add_argument("--no-memory", action="store_true",
                   help="time only: one child per configuration instead of "
                   "one more per contender for its peak RSS")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = REPEATS[args.size]
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def discover():
    """{suite name: (Suite, module name)} for benchmarks/suites/*.py."""
    suites = {}
    for info in pkgutil.iter_modules([os.path.join(BENCH, "suites")]):
        if info.name.startswith("_"):
            continue
        module_name = "benchmarks.suites." + info.name
        suite = importlib.import_module(module_name).SUITE
        suites[suite.name] = (suite, module_name)
    return suites


def tree_rss(proc):
    try:
        return sum(p.memory_info().rss
                   for p in [proc, *proc.children(recursive=True)])
    except psutil.NoSuchProcess:  # exited between two reads
        return 0


def watch(proc, time_cap, mem_cap_bytes):
    """Waits for the child; returns None, or why it has to be killed.

    RLIMIT_AS would be the obvious memory cap, but TensorFlow and JAX reserve
    far more virtual memory than they use, so RSS is polled instead.
    """
    watched = psutil.Process(proc.pid)
    deadline = time.monotonic() + time_cap
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return "timeout"
        if tree_rss(watched) > mem_cap_bytes:
            return "over memory cap"
        time.sleep(POLL_S)
    return None


def run_child(spec, time_cap, mem_cap_bytes):
    """Runs one child; returns (its result, None) or (None, failure status)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        with open(os.path.join(tmp, "log"), "w+") as log:
            proc = subprocess.Popen(
                [sys.executable, CHILD, json.dumps(dict(spec, out=out))],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own process group: a kill takes any helper processes
                # too, and Ctrl-C reaches only the parent, which kills it.
                start_new_session=True,
            )
            try:
                status = watch(proc, time_cap, mem_cap_bytes)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if status:
                return None, status
            if proc.returncode != 0 or not os.path.exists(out):
                log.seek(0)
                lines = [line.strip() for line in log if line.strip()]
                last = f": {lines[-1]}" if lines else ""
                return None, f"error: exit {proc.returncode}{last}"[:160]
        with open(out) as f:
            return json.load(f), None


def run_config(config, module_name, args, failed_before=None):
    """Measures each contender's memory alone, then times the rest together.

    Memory goes first so that a contender which fails there (an exception, a
    crash, a cap) is left out of the shared timing process, where a crash or
    a cap would take the other contenders' timings down with it.
    """
    spec = {
        "module": module_name, "backend": config.backend,
        "mode": config.mode, "params": config.params,
        "threads": THREADS, "warmup": WARMUP,
    }
    caps = (args.time_cap, args.mem_cap_gib * 2**30)
    failed_before = failed_before or {}
    contenders = []
    for name in config.contenders:
        if name in failed_before:
            status = f"not run: {failed_before[name]} at a smaller size"
            contenders.append({"name": name, "status": status,
                               "memory": {"status": status}})
            continue
        if args.no_memory:
            contenders.append({"name": name, "status": "ok",
                               "memory": {"status": "not measured"}})
            continue
        # A fresh process each: ru_maxrss only ever grows.
        memory, status = run_child(
            dict(spec, task="memory", contenders=[name]), *caps)
        memory = memory or {"status": status}
        contenders.append({"name": name, "status": memory["status"],
                           "memory": memory})
    timed = [c for c in contenders if c["status"] == "ok"]
    if timed:
        timing, status = run_child(
            dict(spec, task="time", contenders=[c["name"] for c in timed],
                 repeats=args.repeats), *caps)
        for c in timed:
            c.update(timing[c["name"]] if timing else {"status": status})
    base = contenders[0].get("median_ms")
    for c in contenders:
        if base and "median_ms" in c:
            c["ratio"] = c["median_ms"] / base
    return {"suite": config.suite, "backend": config.backend,
            "mode": config.mode, "params": config.params,
            "contenders": contenders}


def markdown_table(results):
    rows = [
        "| suite | backend | mode | params | contender | median ms "
        "| ratio to baseline | peak RSS +MiB |",
        "|---|---|---|---|---|--:|--:|--:|",
    ]
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        for i, c in enumerate(r["contenders"]):
            median = (f"{c['median_ms']:.2f}" if c["status"] == "ok"
                      else c["status"])
            ratio = f"{c['ratio']:.2f}x" if "ratio" in c else "-"
            if i == 0:
                ratio += " (baseline)"
            mem = c["memory"]
            peak = (f"{mem['peak_rss_mib']:.1f}" if mem["status"] == "ok"
                    else mem["status"])
            cells = [r["suite"], r["backend"], r["mode"], params, c["name"],
                     median, ratio, peak]
            rows.append("| " + " | ".join(
                cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def table(report):
    s = report["settings"]
    details = (f"{s['size']}: median of {s['repeats']} calls after "
               f"{s['warmup']} warm-up calls; ")
    return markdown_table(report["results"]) + "\n" + caption(report, details)


def main(argv=None):
    # SIGTERM unwinds like Ctrl-C, so run_child's cleanup kills the child.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    args = parse_args(argv)
    suites = discover()
    names = args.suite or sorted(suites)
    unknown = sorted(set(names) - set(suites))
    if unknown:
        sys.exit(f"unknown suite(s) {unknown}; available: {sorted(suites)}")
    configs = [
        (config, suites[name][1])
        for name in names
        for config in suites[name][0].configs(args.size == "quick")
        if config.backend in args.backend
    ]
    report = start_report(
        settings={
            "size": args.size, "repeats": args.repeats, "warmup": WARMUP,
            "threads": THREADS, "time_cap_s": args.time_cap,
            "mem_cap_gib": args.mem_cap_gib, "memory": not args.no_memory,
            "argv": sys.argv[1:],
        },
        results=[],
    )
    # {series: {contender: the status it first failed with}}
    failures = {}
    for i, (config, module_name) in enumerate(configs, 1):
        print(f"[{i}/{len(configs)}] {config.suite} {config.backend} "
              f"{config.mode} {config.params}", file=sys.stderr, flush=True)
        failed = failures.setdefault(config.series, {})
        result = run_config(config, module_name, args,
                            failed if config.series else None)
        result["series"] = config.series
        for c in result["contenders"]:
            if c["status"] != "ok" and not c["status"].startswith("not run"):
                failed.setdefault(c["name"], c["status"].split(":")[0])
        report["results"].append(result)
    finish_report(report, table, args)


if __name__ == "__main__":
    main()
