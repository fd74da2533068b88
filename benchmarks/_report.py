"""The report around a benchmark's rows: machine, versions, load, wall time.

Shared by `run.py` and `accuracy.py`. Like `_runner.py`, it must not import
keras or a backend: both parents stay free of them.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every core this process may use goes to the intra-op pool of each child.
THREADS = len(os.sched_getaffinity(0))


def machine_info():
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip()
                  for line in f if line.startswith("model name")]
    dists = importlib.metadata.packages_distributions()
    packages = {}
    for name in ("keras", "tensorflow", "jax", "jaxlib", "torch", "numpy"):
        # The import name maps to e.g. tensorflow-cpu, whichever is installed.
        versions = [importlib.metadata.version(d) for d in dists.get(name, [])]
        packages[name] = versions[0] if versions else None
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": THREADS,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": packages,
    }


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def start_report(**fields):
    """The report's header, taken before the first measurement."""
    return {
        "date": _now(),
        "machine": machine_info(),
        "commit": git_commit(),
        **fields,
        # Other work on the machine skews timings: this shows whether any ran.
        "load_average": {"start": os.getloadavg()},
    }


def caption(report, details=""):
    """One line naming the machine, versions, load and commit of a run.

    `details` goes before the load, e.g. how many calls a median is of.
    """
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    load = report["load_average"]
    return (
        f"{report['date']}, {m['cpu_model']}, {m['cores_usable']} cores used, "
        f"{m['memory_gib']} GiB; Python {m['python']}, {versions}; {details}"
        f"1-min load average {load['start'][0]:.2f} at start, "
        f"{load['end'][0]:.2f} at end; wall time "
        f"{format_duration(report['wall_s'])}; "
        f"commit {report['commit'] or 'unknown'}.\n"
    )


def format_duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s"


def write_json(report, path):
    """Writes `report` whole, replacing `path` only once it is written: a
    run stopped while it writes keeps the previous version."""
    with open(path + ".part", "w") as f:
        json.dump(report, f, indent=1)
    os.replace(path + ".part", path)


def finish_report(report, table, args):
    """Stamps the end of the run, prints `table` and writes the files.

    `table(report)` returns the markdown to print and to write to
    `args.markdown`; the whole report goes to `args.json`.
    """
    report["load_average"]["end"] = os.getloadavg()
    report["end_date"] = _now()
    # To the second, as the dates: enough for runs of minutes to hours.
    report["wall_s"] = (
        datetime.datetime.fromisoformat(report["end_date"])
        - datetime.datetime.fromisoformat(report["date"])).total_seconds()
    # On a shared machine the wall time says little; the CPU time the child
    # processes used grows far less with the other work.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["children_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    text = table(report)
    print(text, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        write_json(report, args.json)
    print(f"total wall time {format_duration(report['wall_s'])}, CPU time of "
          f"the child processes {format_duration(report['children_cpu_s'])}",
          file=sys.stderr, flush=True)
