"""Batch-scaling plots from the runner's JSON.

    python benchmarks/plot.py RESULTS.json [--out benchmarks/plots]

Reads the `scaling` suite's results (`python benchmarks/run.py --full
--suite scaling --json RESULTS.json`) and writes one PNG per loss family,
`mined.png` and `infonce.png`: median time and peak-RSS increase against the
batch size, log-log, one line per contender. Where a contender failed (the
memory cap, the time cap, an error) its curve ends with a cross at the
failing batch, drawn at the curve's last height, and the legend says why.
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


def curves(results, loss):
    """{contender: ([(batch, median_ms, peak_rss_mib)], first failure)}."""
    out = {}
    for result in sorted((r for r in results if r["suite"] == "scaling"
                          and r["params"]["loss"] == loss),
                         key=lambda r: r["params"]["batch"]):
        batch = result["params"]["batch"]
        for c in result["contenders"]:
            points, failure = out.setdefault(c["name"], ([], None))
            if failure is not None:
                continue
            if c["status"] == "ok":
                points.append((batch, c["median_ms"],
                               c["memory"].get("peak_rss_mib")))
            else:
                out[c["name"]] = (points, (batch, c["status"].split(":")[0]))
    return out


def plot_family(report, family, losses, out_dir):
    fig, axes = plt.subplots(2, len(losses), figsize=(4.2 * len(losses), 7),
                             squeeze=False)
    for column, loss in enumerate(losses):
        data = curves(report["results"], loss)
        for row, (metric, label) in enumerate(METRICS):
            ax = axes[row][column]
            index = 1 if metric == "median_ms" else 2
            for name, (points, failure) in data.items():
                # Peak RSS is missing from runs made with --no-memory.
                measured = [p for p in points if p[index] is not None]
                xs = [p[0] for p in measured]
                ys = [max(p[index], 0.1) for p in measured]
                (line,) = ax.plot(xs, ys, marker="o", label=name)
                if failure is not None and ys:
                    ax.plot([failure[0]], [ys[-1]], marker="x", markersize=10,
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
