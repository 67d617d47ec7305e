"""A review (agent/review.py) as a rich table on the terminal, as JSON, and as a markdown
report with a score-over-time plot (matplotlib) for a paper appendix or a pull request."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.review import Interval, Review, Row, Taxonomy


def fmt(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.4g}" if sign else f"{x:.6g}"


def said(iv: Interval | None) -> str:
    if iv is None:
        return "no per-instance scores"
    return (f"{iv.mean:+.4g} [{iv.low:+.4g}, {iv.high:+.4g}] 95% bootstrap, won {iv.won} / lost "
            f"{iv.lost} of {iv.n}")


def taxonomy_lines(t: Taxonomy) -> list[str]:
    invalid = ", ".join(f"{cause} {share:.1%}" for cause, share in t.invalid.items()) or "none"
    return [
        f"candidates: {t.candidates}",
        f"invalid, by cause (share of all candidates): {invalid}",
        f"duplicates (same code as an earlier candidate): {t.duplicates:.1%}",
        f"stagnation (longest stretch without a new best): {t.stagnation} candidates",
        f"premature convergence (largest share descended from one early candidate): {t.convergence:.1%}"
        + (f" (from {t.convergence_root[:10]})" if t.convergence_root else ""),
        "cost per improvement: " + (f"${t.cost_per_improvement:.4f} ({t.improvements} improvements, "
                                     f"${t.cost_usd:.4f})" if t.cost_per_improvement is not None
                                     else f"no improvement (${t.cost_usd:.4f})"),
    ]


def short(iv: Interval | None) -> str:
    return "n/a" if iv is None else f"{iv.mean:+.3g} [{iv.low:+.3g}, {iv.high:+.3g}] {iv.won}/{iv.lost}/{iv.n}"


def show(review: Review, console: Console) -> None:
    test = review.test_stage or "test"
    table = Table(title=f"{review.task} {review.session}: top {len(review.rows)} by {review.ranking_stage} "
                        f"({review.direction}); gains over the baseline, positive is better")
    for name in ("rank", "commit", review.ranking_stage, "gain", test, f"{test} gain",
                 "paired gain [95%] won/lost/n", "flags"):
        table.add_column(name)
    for r in [review.baseline, *review.rows]:
        base = r is review.baseline
        table.add_row("base" if base else str(r.rank or "-"), r.commit[:10], fmt(r.score), fmt(r.gain, True),
                      fmt(r.test), fmt(r.test_gain, True), "" if base else short(r.interval),
                      ", ".join(flag.split(":")[0] for flag in r.flags))
    console.print(table)
    if not review.test_stage:
        console.print("the task has no held-out stage: the held-out columns are empty")
    elif not review.instances:
        console.print(f"the {test} stage reports no per-instance scores: no paired interval")
    for r in review.rows:
        for flag in r.flags:
            console.print(f"  {r.commit[:10]} {flag}")
    console.print("why the run went as it did:")
    for line in taxonomy_lines(review.taxonomy):
        console.print(f"  {line}")


def to_json(review: Review) -> dict[str, Any]:
    return dataclasses.asdict(review)


def write_markdown(review: Review, path: Path) -> Path:
    """The report at `path`, and its plot beside it (`<stem>-score.svg`); returns the plot."""
    plot = path.with_name(f"{path.stem}-score.svg")
    draw(review, plot)
    test = review.test_stage or "test"
    lines = [f"# Review of {review.session} ({review.task})", "",
             f"Ranked by `{review.ranking_stage}` ({review.direction}); held-out stage: "
             f"`{review.test_stage or 'none'}`. Gains are over the baseline, positive is better.", "",
             f"| rank | commit | {review.ranking_stage} | gain | {test} | {test} gain | paired gain | flags |",
             "|---|---|---|---|---|---|---|---|"]
    for r in [review.baseline, *review.rows]:
        base = r is review.baseline
        lines.append(f"| {'base' if base else r.rank or '-'} | `{r.commit[:10]}` | {fmt(r.score)} | "
                     f"{fmt(r.gain, True)} | {fmt(r.test)} | {fmt(r.test_gain, True)} | "
                     f"{'' if base else said(r.interval)} | {'; '.join(r.flags)} |")
    lines += ["", f"![score over time]({plot.name})", "", "## Why the run went as it did", ""]
    lines += [f"- {line}" for line in taxonomy_lines(review.taxonomy)]
    path.write_text("\n".join(lines) + "\n")
    return plot


def draw(review: Review, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xs = [i for i, score, _ in review.series if score is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.scatter(xs, [score for _, score, _ in review.series if score is not None], s=10, alpha=0.6,
               label="candidate")
    ax.step([i for i, _, _ in review.series], [best for _, _, best in review.series], where="post",
            label="best so far")
    if review.baseline.score is not None:
        ax.axhline(review.baseline.score, color="grey", linestyle="--", label="baseline")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel(f"{review.ranking_stage} score ({review.direction})")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def row_of(review: Review, commit: str) -> Row | None:
    return next((r for r in [review.baseline, *review.rows] if r.commit == commit), None)
