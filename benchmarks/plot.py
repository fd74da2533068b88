"""Batch-scaling plots from the runner's JSON.

    python benchmarks/plot.py RESULTS.json [--out benchmarks/plots]

Reads the `scaling` suite's results (`python benchmarks/run.py --full
--suite scaling --json RESULTS.json`) and writes one PNG per loss family,
`mined.png` and `infonce.png`: median time and peak-RSS increase against the
batch size, log-log, one line per contender. Where a contender failed (the
memory cap, the time cap, an error) its curve ends with a cross at the
failing batch, drawn at the curve's last height, and the legend says why.
A run without memory figures (`--quick`, `--no-memory`) draws the times
only.
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FAMILIES = {
    "mined": ("batch_all", "batch_hard", "semi_hard"),
    "infonce": ("ntxent", "supcon"),
}
METRICS = (
    ("median_ms", "time per forward + backward (ms)"),
    ("peak_rss_mib", "peak RSS increase (MiB)"),
)


def curves(results, loss, metric):
    """{contender: ([(batch, value)], (batch, why) of its first failure)}.

    Time and memory fail separately: the memory runs are one child per
    contender, the timings one child for all, so a slow contender's timeout
    takes every timing of its configuration but no memory figure.
    """
    out = {}
    for result in sorted((r for r in results if r["suite"] == "scaling"
                          and r["params"]["loss"] == loss),
                         key=lambda r: r["params"]["batch"]):
        batch = result["params"]["batch"]
        for c in result["contenders"]:
            points, failure = out.setdefault(c["name"], ([], None))
            source = c["memory"] if metric == "peak_rss_mib" else c
            if failure is not None or source["status"].startswith("not measured"):
                continue
            if source["status"] == "ok" and metric in source:
                points.append((batch, source[metric]))
            elif not source["status"].startswith("not run"):
                out[c["name"]] = (points, (batch, source["status"].split(":")[0]))
    return out


def plot_family(report, family, losses, out_dir):
    fig, axes = plt.subplots(2, len(losses), figsize=(4.2 * len(losses), 7),
                             squeeze=False)
    for column, loss in enumerate(losses):
        for row, (metric, label) in enumerate(METRICS):
            ax = axes[row][column]
            found = curves(report["results"], loss, metric)
            if not any(points for points, _ in found.values()):
                # --quick and --no-memory runs have no peak RSS; a log axis
                # with nothing on it cannot be drawn.
                ax.text(0.5, 0.5, "not measured", ha="center",
                        transform=ax.transAxes)
                ax.set_ylabel(label)
                continue
            for name, (points, failure) in found.items():
                xs = [p[0] for p in points]
                ys = [max(p[1], 0.1) for p in points]
                (line,) = ax.plot(xs, ys, marker="o", label=name)
                if failure is not None:
                    # Drawn at the curve's last height, or at the bottom.
                    height = ys[-1] if ys else 0.1
                    ax.plot([failure[0]], [height], marker="x", markersize=10,
                            color=line.get_color(), linestyle="none",
                            label=f"{name}: {failure[1]} at {failure[0]}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            if row == 0:
                ax.set_title(loss)
            ax.legend(fontsize=7)
    m = report["machine"]
    fig.suptitle(
        f"{family}: JAX jax.jit (pml: PyTorch CPU), dim 128, float32; "
        f"{m['cpu_model']}, {m['cores_usable']} cores; {report['date'][:10]}",
        fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, f"{family}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", help="the runner's JSON (suite scaling)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "plots"))
    args = p.parse_args(argv)
    with open(args.results) as f:
        report = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    for family, losses in FAMILIES.items():
        print(plot_family(report, family, losses, args.out))


if __name__ == "__main__":
    main()
