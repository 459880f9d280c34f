"""The study's summary: results tables from metrics.json, and the results.md written beside it.

HybridHash (ICMR 2024, arXiv 2405.07524) reports mAP per code length (Sec. 4.2, Table 2) and
ablations (Sec. 4.3). The notebooks record every number in ``<outputs>/<dataset>/metrics.json``
(:mod:`hhlib.artifacts`): ``runs`` (one row per method x code length), ``ablations`` (one row per
configuration of notebook 05), ``split`` (split sizes, notebook 01) and ``paper_reference`` (the
paper's numbers for this dataset and their source, from params/, notebook 03). This module turns
those into pandas tables, with the paper's numbers beside ours where a source gives them, and
writes ``results.md``. Command line (no argparse): ``python -m hhlib.report <outputs/set or set>``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hhlib import artifacts

__all__ = [
    "RESULTS_FILE",
    "ablations_table",
    "evaluate_seeds",
    "load_metrics",
    "main",
    "markdown_table",
    "resolve_results_dir",
    "results_markdown",
    "results_table",
    "run_row",
    "write_results_markdown",
]

RESULTS_FILE = "results.md"
# columns of the main table, in order (absent ones are skipped)
RUN_COLUMNS = (
    "method", "bits", "n_seeds", "map", "map_std", "map_tie_aware", "map_best_over_evals", "best_epoch", "topk",
    "precision_within_radius", "constant_bits_per_seed", "epochs", "train_seconds", "preset",
)
ABLATION_COLUMNS = (
    "study", "name", "family", "backbone", "variant", "loss", "bits", "n_seeds", "map", "map_std", "map_tie_aware",
    "constant_bits_per_seed", "epochs", "lr", "loss_weights", "n_parameters", "flops", "train_seconds",
)

SECONDS = {"train_seconds": 1}  # wall times print with one decimal


def load_metrics(out_dir: str | Path) -> dict[str, Any]:
    """Read ``<out_dir>/metrics.json``.

    Args:
        out_dir: a dataset's outputs folder (``artifacts.dataset_dir(out_dir_root, dataset)``).

    Returns:
        The report dict (``dataset``, ``runs``, ``ablations`` and any other fields).

    Raises:
        FileNotFoundError: no metrics.json there (says which notebook writes it).
    """
    path = Path(out_dir) / artifacts.METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {artifacts.METRICS_FILE} in {out_dir}: run notebooks 01-05 first (make reproduce DATASET=<set>); "
            "02_train writes the runs, 03_evaluate the evaluation, 05_ablations the ablations"
        )
    return artifacts.read_metrics(path)


def run_row(metrics: Mapping[str, Any], bits: int, method: str = "hybridhash") -> dict[str, Any]:
    """The metrics.json run of one method and code length.

    Args:
        metrics: a metrics.json report.
        bits: code length.
        method: the run's method (``"hybridhash"`` for notebook 02's runs).

    Returns:
        A copy of the run row (``run_dir`` locates its checkpoint and codes.npz).

    Raises:
        KeyError: no such run (says which notebook and parameter produce it).
    """
    for run in metrics.get("runs", []):
        if run.get("method") == method and int(run.get("bits", -1)) == int(bits):
            return dict(run)
    recorded = sorted((r.get("method"), r.get("bits")) for r in metrics.get("runs", []))
    raise KeyError(
        f"no {method} run with {bits} bits in metrics.json (recorded: {recorded or 'none'}): "
        f"run 02_train with {bits} in bits_list first"
    )


# scalar fields of hhlib.evaluate.evaluate copied into a run row, plus the curves
EVALUATION_FIELDS = (
    "map", "map_tie_aware", "topk", "precision_within_radius", "mean_returned_within_radius", "radius",
    "n_query", "n_database", "tie_rule", "precision_at_n", "pr_curve",
)


def evaluate_seeds(
    metrics: Mapping[str, Any], bits_list: Sequence[int], method: str = "hybridhash", **evaluate_options: Any
) -> list[dict[str, Any]]:
    """Evaluate the codes of every seed of each code length (notebook 03): one row per (bits, seed).

    Args:
        metrics: a metrics.json report whose runs (notebook 02) list their seeds' ``run_dirs``.
        bits_list: code lengths to evaluate.
        method: the runs' method.
        **evaluate_options: passed to ``hhlib.evaluate.evaluate`` (topk, precision_at, radius).

    Returns:
        Per-seed rows: the run's training fields, its ``seed`` and ``run_dir``, and ``EVALUATION_FIELDS``
        from that seed's codes; ``hhlib.spread.aggregate_seeds(rows, artifacts.RUN_KEY)`` gives the table rows.

    Raises:
        KeyError: a code length without a recorded run.
    """
    from hhlib.evaluate import evaluate

    rows = []
    for bits in bits_list:
        run = run_row(metrics, bits, method)
        seeds = run.get("seeds") or [run.get("seed", 0)]
        run_dirs = run.get("run_dirs") or [run["run_dir"]]
        evidence = run.get("map_last_evals_per_seed") or [run.get("map_last_evals")] * len(seeds)
        base = {k: v for k, v in run.items()
                if not k.endswith(("_std", "_per_seed")) and k not in ("seeds", "run_dirs", "n_seeds", "map_last_evals")}
        for seed, run_dir, last_evals in zip(seeds, run_dirs, evidence):
            codes = artifacts.load_codes(Path(run_dir) / artifacts.CODES_FILE)
            evaluation = evaluate(codes["query_codes"], codes["database_codes"], codes["query_labels"],
                                  codes["database_labels"], **evaluate_options)
            row = {**base, "seed": seed, "run_dir": run_dir, **{k: evaluation[k] for k in EVALUATION_FIELDS if k in evaluation}}
            if last_evals is not None:
                row["map_last_evals"] = last_evals  # notebook 02's convergence evidence, carried over
            rows.append(row)
    return rows


def results_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The mAP table: one row per run (method x code length), the paper's figure beside ours.

    Args:
        metrics: a metrics.json report; ``paper_reference`` (optional) is
            ``{"map": {"<bits>": value or None}, "source": str, "metric": str}``.

    Returns:
        A DataFrame sorted by method and bits with the ``RUN_COLUMNS`` present in the runs, plus
        ``paper_map`` (None where the paper gives no number) and ``paper_source``.
    """
    runs = list(metrics.get("runs", []))
    columns = [c for c in RUN_COLUMNS if any(c in run for run in runs)]
    frame = pd.DataFrame([{c: run.get(c) for c in columns} for run in runs], columns=columns)
    reference = metrics.get("paper_reference") or {}
    paper = {str(k): v for k, v in (reference.get("map") or {}).items()}
    frame["paper_map"] = [paper.get(str(int(b))) for b in frame["bits"]] if len(frame) else []
    frame["paper_source"] = [reference.get("source") if paper.get(str(int(b))) is not None else None
                             for b in frame["bits"]] if len(frame) else []
    if len(frame):
        frame = frame.sort_values(["method", "bits"], kind="stable").reset_index(drop=True)
    return frame


def ablations_table(metrics: Mapping[str, Any], bits: int | None = None) -> pd.DataFrame:
    """The ablation / method / backbone comparison table of notebook 05.

    Args:
        metrics: a metrics.json report.
        bits: keep only this code length (None = all).

    Returns:
        A DataFrame with the ``ABLATION_COLUMNS`` present, in recording order (sorted by bits).
    """
    rows = [row for row in metrics.get("ablations", []) if bits is None or int(row["bits"]) == int(bits)]
    columns = [c for c in ABLATION_COLUMNS if any(c in row for row in rows)]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    if len(frame):
        frame = frame.sort_values("bits", kind="stable").reset_index(drop=True)
    return frame


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, dict):  # e.g. loss_weights: "quantization_weight 0.1"
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "–"
    if isinstance(value, list):  # e.g. constant_bits_per_seed: "2, 0, 2"
        return ", ".join(map(str, value)) or "–"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, digits: int = 4, column_digits: Mapping[str, int] | None = None) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table (no extra dependency).

    Args:
        frame: the table.
        digits: decimals of float cells; missing values print as "–".
        column_digits: per-column decimals overriding ``digits`` (e.g. ``{"train_seconds": 1}``).

    Returns:
        The table text, one line per row plus the header and rule lines.
    """
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"
    lines = [header, rule]
    places = [dict(column_digits or {}).get(c, digits) for c in frame.columns]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, d) for v, d in zip(row, places)) + " |")
    return "\n".join(lines)


def results_markdown(metrics: Mapping[str, Any], figures: Sequence[str] = ()) -> str:
    """The text of results.md: split sizes, the mAP table, the ablation table, the figures.

    Args:
        metrics: a metrics.json report.
        figures: figure paths relative to the results file (e.g. ``figures/pr_curves.png``).

    Returns:
        Markdown text.
    """
    dataset = metrics.get("dataset")
    lines = [f"# Results: {dataset}", "",
             "Every number comes from `metrics.json` in this folder (written by notebooks 01-05). "
             "`map` is the final model's mAP@topk with ties broken by database order, averaged over `n_seeds` "
             "training seeds (`map_std`: their standard deviation); "
             "`map_tie_aware` is its expectation over tied orderings; `map_best_over_evals` is the best of the "
             "periodic evaluations on the query set (what the reference code reports; optimistic).", ""]
    ablations = ablations_table(metrics)
    if not metrics.get("runs") and len(ablations):  # notebook 05 alone (make converged): only its parts
        return "\n".join(lines + _ablations_markdown(ablations) + _readings_markdown(metrics, ablations_only=True)
                          + _figures_markdown(figures))
    split = metrics.get("split") or {}
    if split.get("sizes"):
        lines += ["Split: " + ", ".join(f"{k} {v:,}" for k, v in split["sizes"].items()) + ".", ""]
    lines += ["## HybridHash mAP per code length", ""]
    table = results_table(metrics)
    lines += [markdown_table(table.drop(columns=["paper_source"]), column_digits=SECONDS) if len(table)
              else "(no runs recorded yet)", ""]
    reference = metrics.get("paper_reference") or {}
    if any(v is not None for v in (reference.get("map") or {}).values()):
        lines += [f"`paper_map`: {reference.get('metric', 'mAP')}; source: {reference.get('source')}.", ""]
    else:
        lines += ["`paper_map`: no published figure with a source is recorded for this dataset/configuration "
                  "(params/<set>/03_evaluate.yaml `paper_map`).", ""]
    if len(ablations):
        lines += _ablations_markdown(ablations)
    return "\n".join(lines + _readings_markdown(metrics) + _figures_markdown(figures))


def _ablations_markdown(ablations: pd.DataFrame) -> list[str]:
    return ["## Ablations, method and backbone comparison", "", markdown_table(ablations, column_digits=SECONDS), ""]


def _figures_markdown(figures: Sequence[str]) -> list[str]:
    return ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""] if figures else []


def _readings_markdown(metrics: Mapping[str, Any], ablations_only: bool = False) -> list[str]:
    """The readings of notebooks 01-05 (hhlib.readings), one bullet per sentence; ``ablations_only``: 05's alone."""
    from hhlib import readings

    sections = (("Data", readings.split_readings), ("Training", readings.training_readings),
                ("Evaluation", readings.evaluation_readings), ("t-SNE", readings.tsne_readings),
                ("Ablations and comparisons", readings.ablation_readings))
    sections = sections[-1:] if ablations_only else sections
    lines = ["## Readings", "", "Generated from metrics.json by `hhlib.readings`.", ""]
    for title, generate in sections:
        lines += [f"**{title}**", ""] + [f"- {sentence}" for sentence in generate(metrics)] + [""]
    if metrics.get("shorter_study"):
        lines += ["**Trained longer than the shorter study (notebook 05's `shorter_study`)**", ""]
        lines += [f"- {sentence}" for sentence in _longer_training(metrics)] + [""]
    if metrics.get("text_hashing"):
        from hhlib.text_hashing import text_readings

        lines += ["**Text hashing (notebook 06)**", ""]
        lines += [f"- {sentence}" for sentence in text_readings(metrics["text_hashing"])] + [""]
    return lines


def _longer_training(metrics: Mapping[str, Any]) -> list[str]:
    """hhlib.readings.longer_training_readings against the saved ``shorter_study`` (a path as notebook 05 saw it)."""
    from hhlib import params, readings

    return readings.longer_training_readings(metrics, params.resolve_path(metrics["shorter_study"]))


def write_results_markdown(out_dir: str | Path) -> Path:
    """Write ``<out_dir>/results.md`` from ``<out_dir>/metrics.json`` and the figures in ``<out_dir>/figures``.

    Args:
        out_dir: a dataset's outputs folder.

    Returns:
        The written path.

    Raises:
        FileNotFoundError: no metrics.json in ``out_dir``.
    """
    out_dir = Path(out_dir)
    metrics = load_metrics(out_dir)
    figures = sorted(str(p.relative_to(out_dir)) for p in (out_dir / "figures").glob("*.png"))
    text = results_markdown(metrics, figures)
    path = out_dir / RESULTS_FILE
    artifacts.atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    return path


def resolve_results_dir(target: str | Path, params_dir: str | Path | None = None) -> Path:
    """Find the folder holding metrics.json for a command-line target.

    Args:
        target: a folder holding metrics.json; or a parameter set name (``smoke``), or the
            Makefile's ``outputs/<set>`` folder, whose notebooks write to
            ``artifacts.dataset_dir(out_dir, dataset)`` as params/<set>/shared.yaml sets.
        params_dir: the params folder (None = the repository's params/).

    Returns:
        The folder.

    Raises:
        FileNotFoundError: neither a folder with metrics.json nor a known parameter set.
    """
    from hhlib import params

    folder = Path(target)
    if (folder / artifacts.METRICS_FILE).is_file():
        return folder
    param_set = folder.name
    if param_set in params.list_param_sets(params_dir):
        values = params.check_params(param_set, params_dir)["03_evaluate"]
        return artifacts.dataset_dir(params.resolve_path(values["out_dir"]), values["dataset"])
    raise FileNotFoundError(
        f"{target}: no {artifacts.METRICS_FILE} there and not a parameter set ({', '.join(params.list_param_sets(params_dir))}): "
        "pass the dataset's outputs folder or a set name, after make reproduce DATASET=<set>"
    )


def main(argv: Sequence[str]) -> int:
    """Command line: ``python -m hhlib.report <outputs folder | set>`` writes results.md.

    Args:
        argv: the arguments after the module name.

    Returns:
        Exit status: 0 written, 1 a problem (printed to stderr), 2 usage error.
    """
    if len(argv) != 1:
        print("usage: python -m hhlib.report <outputs/<dataset> folder | parameter set name>", file=sys.stderr)
        return 2
    try:
        path = write_results_markdown(resolve_results_dir(argv[0]))
    except (FileNotFoundError, ValueError) as error:
        print(f"hhlib.report: {error}", file=sys.stderr)
        return 1
    print(f"hhlib.report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
