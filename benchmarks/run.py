"""The shared benchmark runner of safeloss; see benchmarks/README.md.

    python benchmarks/run.py [--quick|--full] [--suite NAME ...]
        [--backend tensorflow jax torch] [--json PATH [--resume]]
        [--markdown PATH] [--repeats N] [--time-cap S] [--mem-cap-gib G]
        [--[no-]memory]

This parent process never imports keras or a backend: the configurations
run in child processes that choose their backend, and a small parent keeps
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
from types import SimpleNamespace

import psutil

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)

from benchmarks._report import (  # noqa: E402
    THREADS, caption, finish_report, start_report, write_json)
from benchmarks._runner import BACKENDS, not_run, note_failures  # noqa: E402

CHILD = os.path.join(BENCH, "_child.py")
# The first call compiles; more warm-up calls only steady a timing that
# --quick does not claim anything from.
WARMUP = {"quick": 1, "full": 3}
REPEATS = {"quick": 5, "full": 30}
POLL_S = 0.2
# fit_repeats plans a timing child to end within this share of the time cap:
# the rest absorbs what the memory runs could not foresee.
PLANNED_SHARE = 0.75


def parse_args(argv):
    total_gib = psutil.virtual_memory().total / 2**30
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const",
                      const="quick", help="small sizes, 1 warm-up call and 5 "
                      "timed, time only, one child per backend (default)")
    size.add_argument("--full", dest="size", action="store_const",
                      const="full", help="full sizes, 3 warm-up calls and 30 "
                      "timed, memory too")
    p.set_defaults(size="quick")
    p.add_argument("--suite", nargs="+", metavar="NAME",
                   help="suites to run (default: all)")
    p.add_argument("--backend", nargs="+", choices=BACKENDS,
                   default=list(BACKENDS),
                   help="backends to run (default: all)")
    p.add_argument("--json", metavar="PATH", help="write all results here")
    p.add_argument("--resume", action="store_true",
                   help="go on with the run that --json PATH holds (one "
                   "stopped midway): keep its configurations, run the others "
                   "and add them")
    p.add_argument("--markdown", metavar="PATH", help="write the table here")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed calls per contender "
                   "(default: 5 quick, 30 full; a config may cap them)")
    p.add_argument("--time-cap", type=float, default=600.0, metavar="S",
                   help="wall-time limit of each child process, or of each "
                   "configuration in a child timing several (default 600)")
    p.add_argument("--mem-cap-gib", type=float,
                   default=round(0.75 * total_gib, 1), metavar="G",
                   help="RSS limit of each child process "
                   "(default: 75%% of total memory, %(default)s)")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction,
                   help="measure each contender's peak RSS in a child of its "
                   "own, then time each configuration in one more child "
                   "(default with --full); --no-memory times only, every "
                   "configuration of a backend in one child (default with "
                   "--quick)")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = REPEATS[args.size]
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.resume and not args.json:
        p.error("--resume needs --json PATH")
    if args.memory is None:
        args.memory = args.size == "full"
        args.not_measured = "not measured (--quick)"
    else:
        args.not_measured = "not measured (--no-memory)"
    return args


def config_key(config):
    """What identifies a configuration (a `Config` or a report's entry)
    from one run to the next."""
    if isinstance(config, dict):
        config = SimpleNamespace(**config)
    return (config.suite, config.backend, config.mode,
            json.dumps(config.params, sort_keys=True))


def earlier_run(path, settings):
    """The report at `path` to resume, or None where there is none yet.

    Its settings must be this run's (all but the command line), else the
    two halves would not measure the same thing.
    """
    if not os.path.exists(path):
        return None
    with open(path) as f:
        earlier = json.load(f)
    differ = [f"{k}: {earlier['settings'].get(k)!r} there, {v!r} here"
              for k, v in settings.items()
              if k != "argv" and earlier["settings"].get(k) != v]
    if differ:
        sys.exit(f"--resume: {path} was run with other settings ("
                 + "; ".join(differ) + ")")
    return earlier


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


class Records:
    """The JSON lines a child appends to its `out` file, read as they come."""

    def __init__(self, file):
        self.file = file
        self.partial = ""
        self.all = []

    def poll(self):
        """The records completed since the last call."""
        # A child killed mid-write leaves a partial last line: never parsed.
        self.partial += self.file.read()
        *lines, self.partial = self.partial.split("\n")
        new = [json.loads(line) for line in lines if line]
        self.all += new
        return new


def watch(proc, records, time_cap, mem_cap_bytes, on_record):
    """Waits for the child; returns None, or why it has to be killed.

    The time cap restarts at each record, so in a child that times several
    configurations it applies to each (the first one includes the imports).
    RLIMIT_AS would be the obvious memory cap, but TensorFlow and JAX reserve
    far more virtual memory than they use, so RSS is polled instead.
    """
    watched = psutil.Process(proc.pid)
    deadline = time.monotonic() + time_cap
    while proc.poll() is None:
        new = records.poll()
        if new:
            deadline = time.monotonic() + time_cap
            for record in new:
                on_record(record)
        if time.monotonic() > deadline:
            return "timeout"
        if tree_rss(watched) > mem_cap_bytes:
            return "over memory cap"
        time.sleep(POLL_S)
    return None


def run_child(spec, args, on_record=lambda record: None):
    """Runs one child; returns (its records, None or its failure status).

    `on_record` sees each record as it arrives.
    """
    mem_cap_bytes = args.mem_cap_gib * 2**30
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "records.jsonl")
        open(out, "w").close()
        with open(os.path.join(tmp, "log"), "w+") as log, open(out) as f:
            proc = subprocess.Popen(
                [sys.executable, CHILD, json.dumps(dict(spec, out=out))],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own process group: a kill takes any helper processes
                # too, and Ctrl-C reaches only the parent, which kills it.
                start_new_session=True,
            )
            records = Records(f)
            try:
                status = watch(proc, records, args.time_cap, mem_cap_bytes,
                               on_record)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            for record in records.poll():
                on_record(record)
            if not status and proc.returncode != 0:
                log.seek(0)
                lines = [line.strip() for line in log if line.strip()]
                last = f": {lines[-1]}" if lines else ""
                status = f"error: exit {proc.returncode}{last}"[:160]
    return records.all, status


def make_job(index, config, module_name, args, contenders):
    warmup, repeats = config.calls(WARMUP[args.size], args.repeats)
    return {
        "index": index, "module": module_name, "mode": config.mode,
        "params": config.params, "contenders": list(contenders),
        "series": config.series, "warmup": warmup, "repeats": repeats,
    }


def time_jobs(backend, jobs, args, failures, on_start=lambda index: None):
    """Times `jobs` of one backend in one child; returns {index: {contender:
    its timing}}.

    A job that takes its child down (a crash, a cap) fails, every contender
    with that status, and the jobs after it go on in a fresh child. A child
    that dies before it starts a job (an import error) fails all those left:
    each fresh child would die the same way. `failures` ({series:
    {contender: failure}}) is read and updated, as `Config.series` says.
    """
    series = {job["index"]: job["series"] for job in jobs}
    done = {}

    def finish(index, timings):
        done[index] = timings
        note_failures(failures, series[index],
                      {name: t["status"] for name, t in timings.items()})

    pending = list(jobs)
    while pending:
        started = []

        def on_record(record):
            if "start" in record:
                started.append(record["start"])
                on_start(record["start"])
            else:
                finish(record["index"], record["result"])

        _, status = run_child(
            {"task": "time", "backend": backend, "threads": THREADS,
             "jobs": pending, "failed": failures}, args, on_record)
        pending = [job for job in pending if job["index"] not in done]
        if not pending:
            break
        if not started:
            crashed = pending
        else:
            # The job it was in, or the next one if it died between two.
            crashed = [next((job for job in pending
                             if job["index"] == started[-1]), pending[0])]
        status = status or "error: child exited without a result"
        for job in crashed:
            earlier = failures.get(job["series"], {})
            finish(job["index"], {
                name: {"status": not_run(earlier[name]) if name in earlier
                       else status}
                for name in job["contenders"]})
        pending = [job for job in pending if job["index"] not in done]
    return done


def fit_repeats(repeats, memory_runs, time_cap):
    """How many of `repeats` timed calls fit a timing child into its cap.

    `memory_runs` has, for each contender to time, the wall seconds of its
    memory child and the times (ms) of the calls it made. The timing child
    repeats all of that (start-up, build, the same warm-up calls), so their
    sum is its set-up; then each round calls every contender once, at about
    its fastest memory call (the first one compiles). Planned to end within
    `PLANNED_SHARE` of the cap; at least 1 call, which may still time out.
    """
    setup_s = sum(wall_s for wall_s, _ in memory_runs)
    round_s = sum(min(calls_ms) for _, calls_ms in memory_runs) / 1e3
    if round_s <= 0:
        return repeats
    fitting = int((PLANNED_SHARE * time_cap - setup_s) // round_s)
    return max(1, min(repeats, fitting))


def measure_config(index, config, module_name, args, failures):
    """Measures each contender's memory alone, then times the rest together.

    Memory goes first so that a contender which fails there (an exception, a
    crash, a cap) is left out of the shared timing process, where a crash or
    a cap would take the other contenders' timings down with it. The memory
    runs also say how long each call takes, so the timing child makes fewer
    timed calls where all of them would not fit the time cap. Returns
    ({contender: status, timing and memory}, timed calls per contender).
    """
    earlier = failures.get(config.series, {})
    contenders = {}
    memory_runs = {}
    for name in config.contenders:
        if name in earlier:
            status = not_run(earlier[name])
            contenders[name] = {"status": status, "memory": {"status": status}}
            continue
        # A fresh process each: ru_maxrss only ever grows.
        start = time.monotonic()
        records, status = run_child(
            {"task": "memory", "backend": config.backend, "threads": THREADS,
             "job": make_job(index, config, module_name, args, [name]),
             "contender": name}, args)
        memory = records[0]["result"] if records else {"status": status}
        contenders[name] = {"status": memory["status"], "memory": memory}
        if memory["status"] == "ok":
            memory_runs[name] = (time.monotonic() - start, memory["calls_ms"])
    note_failures(failures, config.series,
                  {n: c["status"] for n, c in contenders.items()})
    job = make_job(index, config, module_name, args, list(memory_runs))
    job["repeats"] = fit_repeats(job["repeats"], memory_runs.values(),
                                 args.time_cap)
    if memory_runs:
        timings = time_jobs(config.backend, [job], args, failures)[index]
        for name in memory_runs:
            contenders[name].update(timings[name])
    return contenders, job["repeats"]


def result(config, contenders, args, repeats=None):
    """The report's entry for `config`; `contenders` maps each name to its
    status, timing and memory; `repeats`, where given, replaces the config's
    timed calls."""
    entries = [dict(name=name, **contenders[name])
               for name in config.contenders]
    base = entries[0].get("median_ms")
    for c in entries:
        if base and "median_ms" in c:
            c["ratio"] = c["median_ms"] / base
    warmup, config_repeats = config.calls(WARMUP[args.size], args.repeats)
    repeats = config_repeats if repeats is None else repeats
    return {"suite": config.suite, "backend": config.backend,
            "mode": config.mode, "params": config.params,
            "series": config.series, "warmup": warmup, "repeats": repeats,
            "contenders": entries}


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
    capped = sorted({(r["repeats"], r["warmup"]) for r in report["results"]}
                    - {(s["repeats"], s["warmup"])})
    fewer = "".join(f", {r} after {w} where a config or the time cap "
                    "limits them" for r, w in capped)
    details = (f"{s['size']}: median of {s['repeats']} calls after "
               f"{s['warmup']} warm-up call(s){fewer}; ")
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
    settings = {
        "size": args.size, "repeats": args.repeats,
        "warmup": WARMUP[args.size],
        "threads": THREADS, "time_cap_s": args.time_cap,
        "mem_cap_gib": args.mem_cap_gib, "memory": args.memory,
        "argv": sys.argv[1:],
    }
    earlier = earlier_run(args.json, settings) if args.resume else None
    report = start_report(settings=settings, results=[])
    # {series: {contender: the failure it first had}}
    failures = {}
    done = {}
    kept = []  # the earlier run's entries for configurations not run now
    if earlier:
        report["resumed_from"] = {k: v for k, v in earlier.items()
                                  if k != "results"}
        before = {config_key(entry): entry for entry in earlier["results"]}
        for index, (config, _) in enumerate(configs):
            entry = before.pop(config_key(config), None)
            if entry:
                done[index] = entry
                # Smaller sizes first, so a curve stops where it stopped.
                note_failures(failures, config.series, {
                    c["name"]: c["status"] for c in entry["contenders"]})
        kept = list(before.values())
    to_run = [index for index in range(len(configs)) if index not in done]
    progress = iter(range(1, len(to_run) + 1))

    def on_start(index):
        config = configs[index][0]
        print(f"[{next(progress)}/{len(to_run)}] {config.suite} "
              f"{config.backend} {config.mode} {config.params}",
              file=sys.stderr, flush=True)

    def keep(index, entry):
        """Adds a configuration's entry, and rewrites the JSON with what is
        done so far: a run stopped midway keeps its results."""
        done[index] = entry
        report["results"] = [done[i] for i in sorted(done)] + kept
        if args.json:
            write_json(report, args.json)

    if args.memory:
        for index in to_run:
            config, module_name = configs[index]
            on_start(index)
            start = time.monotonic()
            contenders, repeats = measure_config(
                index, config, module_name, args, failures)
            keep(index, dict(result(config, contenders, args, repeats),
                             wall_s=round(time.monotonic() - start, 1)))
    else:
        for backend in args.backend:
            jobs = [make_job(index, config, module_name, args,
                             config.contenders)
                    for index, (config, module_name) in enumerate(configs)
                    if config.backend == backend and index not in done]
            timings = time_jobs(backend, jobs, args, failures, on_start)
            for index, timing in timings.items():
                keep(index, result(configs[index][0], {
                    name: dict(t, memory={"status": args.not_measured})
                    for name, t in timing.items()}, args))
    report["results"] = [done[i] for i in sorted(done)] + kept
    finish_report(report, table, args)


if __name__ == "__main__":
    main()
