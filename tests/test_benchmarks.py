"""The benchmark runner (`benchmarks/run.py`): one configuration's failure
must not lose the others' results, and the timed calls fit the time cap."""

import pytest

import json

from benchmarks import run
from benchmarks._runner import Config, Suite

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


def test_fit_repeats_plans_within_the_time_cap():
    # Set-up 10 s + 4 s; rounds of 2 + 1 s; 0.75 * 100 s leaves 61 s: 20.
    runs = [(10.0, [5000.0, 2000.0]), (4.0, [1000.0])]
    assert run.fit_repeats(30, runs, time_cap=100) == 20
    assert run.fit_repeats(5, runs, time_cap=100) == 5
    assert run.fit_repeats(30, runs, time_cap=10) == 1  # one call, at least
    assert run.fit_repeats(30, [(1.0, [0.0])], time_cap=10) == 30


@pytest.mark.slow
def test_memory_runs_size_the_timed_calls():
    args = run.parse_args(["--quick", "--memory", "--repeats", "20",
                           "--time-cap", "8"])
    config = Config("fake", "jax", "eager", {}, ("slow", "raises"))
    contenders, repeats = run.measure_config(0, config, MODULE, args, {})

    assert contenders["raises"]["status"] == "error: ValueError: refused"
    slow = contenders["slow"]
    assert slow["memory"]["status"] == "ok"
    assert slow["memory"]["calls_ms"][0] >= 1000.0
    # 1 s a call, so 20 calls cannot fit 8 s: the child makes fewer.
    assert 1 <= repeats <= 5
    assert slow["status"] == "ok"
    assert len(slow["times_ms"]) == repeats
    entry = run.result(config, contenders, args, repeats)
    assert entry["repeats"] == repeats


def _fake_suite(monkeypatch):
    def make_configs(quick):
        return [Config("fake", "jax", "eager", {"batch": batch}, ("ok",),
                       series="curve") for batch in (1, 2, 3)]

    monkeypatch.setattr(run, "discover", lambda: {
        "fake": (Suite("fake", make_configs), MODULE)})


@pytest.mark.slow
def test_resume_runs_only_what_a_stopped_run_left(monkeypatch, tmp_path,
                                                   capsys):
    _fake_suite(monkeypatch)
    path = str(tmp_path / "run.json")
    argv = ["--quick", "--memory", "--repeats", "2", "--json", path]
    run.main(argv)
    with open(path) as f:
        report = json.load(f)
    assert [r["params"] for r in report["results"]] == [
        {"batch": 1}, {"batch": 2}, {"batch": 3}]
    assert all(r["wall_s"] > 0 for r in report["results"])
    # As if stopped during the second config: the file as written after the
    # first one, where the curve's contender had timed out.
    first = report["results"][0]
    first["contenders"][0]["status"] = "timeout"
    stopped = dict(report, results=[first])
    del stopped["end_date"], stopped["wall_s"]
    with open(path, "w") as f:
        json.dump(stopped, f)
    capsys.readouterr()

    run.main(argv + ["--resume"])
    with open(path) as f:
        resumed = json.load(f)
    assert resumed["results"][0] == first  # kept as it was
    assert [r["params"] for r in resumed["results"]] == [
        {"batch": 1}, {"batch": 2}, {"batch": 3}]
    # The curve goes on as it would have: it ended at the timeout.
    assert [r["contenders"][0]["status"] for r in resumed["results"][1:]] \
        == ["not run: timeout at a smaller size"] * 2
    assert resumed["resumed_from"]["date"] == report["date"]
    assert "[2/2] fake jax eager {'batch': 3}" in capsys.readouterr().err

    with pytest.raises(SystemExit, match="repeats: 2 there, 3 here"):
        run.main(["--quick", "--memory", "--repeats", "3", "--json", path,
                  "--resume"])
