"""The benchmark runner's grouped timing child (`benchmarks/run.py`): one
configuration's failure must not lose the others' results."""

from benchmarks import run
from benchmarks._runner import Config

MODULE = "tests.bench_suite"


def _jobs(args, *configs):
    return [run.make_job(i, Config("fake", "jax", "eager", {}, contenders,
                                   series=series), MODULE, args, contenders)
            for i, (contenders, series) in enumerate(configs)]


def test_a_failing_config_keeps_the_others_results():
    args = run.parse_args(["--quick", "--repeats", "2", "--time-cap", "2"])
    jobs = _jobs(
        args,
        (("ok", "raises"), None),
        (("ok", "crashes"), None),  # takes its child down after "ok" ran
        (("ok",), None),  # so this one runs in a fresh child
        (("hangs",), None),
        (("ok",), None),
        (("ok", "raises"), "curve"),
        (("ok", "raises"), "curve"),
    )
    started = []
    done = run.time_jobs("jax", jobs, args, {}, started.append)

    status = {i: {name: t["status"] for name, t in timing.items()}
              for i, timing in done.items()}
    assert status[0]["ok"] == "ok"
    assert status[0]["raises"] == "error: ValueError: refused"
    assert status[1]["ok"].startswith("error: exit 3")
    assert status[1]["crashes"].startswith("error: exit 3")
    assert status[2] == {"ok": "ok"}
    assert status[3] == {"hangs": "timeout"}
    assert status[4] == {"ok": "ok"}
    assert status[6] == {"ok": "ok",
                         "raises": "not run: error at a smaller size"}
    assert len(done[0]["ok"]["times_ms"]) == 2
    assert started == list(range(len(jobs)))
