"""Readings: the sentences that say what the study's numbers show, generated from metrics.json.

Each notebook ends with its readings and results.md repeats them, so no number in a sentence is
typed by hand. The rule for calling something a difference is stated once, here: two
configurations differ when their mean mAPs over seeds are further apart than the sum of their
standard deviations over seeds (``SPREAD_RULE``). With one seed there is no spread and a reading
says so instead of judging. Where the data contradicts a claim of the HybridHash paper (ICMR 2024,
Sec. 4.3), the reading says so plainly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "PAPER_CLAIMS",
    "SPREAD_RULE",
    "ablation_readings",
    "compare",
    "configuration_pairs",
    "difference",
    "evaluation_readings",
    "format_value",
    "longer_training_readings",
    "search_readings",
    "split_readings",
    "training_readings",
    "tsne_readings",
    "unused_bits_reading",
]

SPREAD_RULE = ("a difference counts only when the two means over seeds are further apart than the sum of "
               "their standard deviations over seeds")
# hhlib's rule, not the paper's: a run counts as converged when its last evaluation improved on the
# one before by less than this (chosen as a quarter of the seed-to-seed spread we measured, ~0.02)
CONVERGENCE_TOLERANCE = 0.005

# hhlib's reading of a silhouette: below this the classes are called overlapping (scikit-learn's
# silhouette is 0 for overlapping clusters; 0.1 leaves room for noise in a 1,000-point t-SNE map)
SEPARATED = 0.1

# study -> what the paper claims about changing it (HybridHash, ICMR 2024, Sec. 4.3); the baseline is
# the paper's method, so each claim says the baseline is ahead
PAPER_CLAIMS = {
    "backbone": "the hybrid network beats pure CNN and pure transformer backbones",
    "variant": "the interaction module (both branches together) helps",
    "block_token_kernel": "the block-token granularity matters (the paper's one token per block is best)",
    "alpha": "the paper's alpha = 0.5 is the best weighting",
    "loss": "the paper's loss beats the compared hashing losses",
}


def format_value(row: Mapping[str, Any], field: str = "map") -> str:
    """``"0.781 ± 0.004"`` (several seeds) or ``"0.781 (1 seed)"``; ``" (collapsed codes)"`` added for a collapsed run."""
    std = row.get(f"{field}_std")
    text = f"{row[field]:.3f} (1 seed)" if std is None else f"{row[field]:.3f} ± {std:.3f}"
    return text + (" (collapsed codes: not a result)" if row.get("collapsed") else "")


def difference(a: Mapping[str, Any], b: Mapping[str, Any], field: str = "map") -> dict[str, Any]:
    """``a - b`` in ``field`` and whether it exceeds the spread (``SPREAD_RULE``).

    Returns:
        ``{"delta": float, "spread": float | None, "beyond": bool | None}``; spread and beyond are
        None when either side has one seed.
    """
    delta = float(a[field]) - float(b[field])
    stds = (a.get(f"{field}_std"), b.get(f"{field}_std"))
    if None in stds:
        return {"delta": delta, "spread": None, "beyond": None}
    spread = float(stds[0]) + float(stds[1])
    return {"delta": delta, "spread": spread, "beyond": abs(delta) > spread}


def _seeds_text(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    counts = {a.get("n_seeds", 1), b.get("n_seeds", 1)}
    return f"{counts.pop()} seeds" if len(counts) == 1 else f"{a.get('n_seeds', 1)} and {b.get('n_seeds', 1)} seeds"


def compare(topic: str, a_name: str, a: Mapping[str, Any], b_name: str, b: Mapping[str, Any],
            claim: str | None = None, field: str = "map") -> str:
    """One sentence comparing configuration ``a`` with ``b``; with ``claim``, whether it holds (a is claimed ahead).

    Example: ``"interaction module: hybrid 0.781 ± 0.004 vs no_interaction 0.772 ± 0.006 (3 seeds):
    +0.009, within the spread; the paper's claim (…) is not supported here."``
    """
    d = difference(a, b, field)
    text = (f"{topic}: {a_name} {format_value(a, field)} vs {b_name} {format_value(b, field)} "
            f"({_seeds_text(a, b)}): {d['delta']:+.3f}")
    if d["beyond"] is None:
        verdict = "one seed, so no spread to judge by"
    elif d["beyond"]:
        verdict = f"beyond the spread ({d['spread']:.3f})"
    else:
        verdict = f"within the spread ({d['spread']:.3f})"
    text += f", {verdict}"
    collapsed = [name for name, row in ((a_name, a), (b_name, b)) if row.get("collapsed")]
    if claim and collapsed:
        text += (f"; no verdict on the paper's claim that {claim}: the codes of {' and '.join(collapsed)} collapsed "
                 f"(in at least one seed), so the difference is not a result")
    elif claim and d["beyond"] is not None:
        if d["beyond"] and d["delta"] > 0:
            text += f"; this agrees with the paper's claim that {claim}"
        elif d["beyond"]:
            text += f"; this contradicts the paper's claim that {claim}: {b_name} is ahead"
        else:
            text += f"; the data does not support the paper's claim that {claim}"
    return text + "."


def split_readings(metrics: Mapping[str, Any]) -> list[str]:
    """Notebook 01: the split's sizes and balance."""
    split = metrics.get("split") or {}
    sizes, per_class = split.get("sizes") or {}, split.get("per_class") or {}
    if not sizes:
        return ["No split is recorded yet: run notebook 01."]
    lines = ["Split: " + ", ".join(f"{name} {count:,} images" for name, count in sizes.items())
             + (f"; mAP is computed over the top {split['topk']:,} database items." if split.get("topk")
                else "; mAP is computed over all database items.")]
    for name, counts in per_class.items():
        if counts:
            low, high = min(counts), max(counts)
            shape = "balanced" if low == high else f"unbalanced ({low:,} to {high:,} images per class)"
            lines.append(f"{name}: {len(counts)} classes, {shape}"
                         + (f", {low:,} per class." if low == high else "."))
    return lines


def _runs_by_bits(metrics: Mapping[str, Any], method: str) -> dict[int, Mapping[str, Any]]:
    return {int(r["bits"]): r for r in metrics.get("runs", []) if r.get("method") == method}


def _last_gains(row: Mapping[str, Any]) -> tuple[list[float], str] | None:
    """mAP gain of each seed between its last two evaluations, and those epochs; None without two evaluations."""
    evidence = row.get("map_last_evals_per_seed")
    if not evidence or any(len(e) < 2 for e in evidence):
        return None
    return [e[-1][1] - e[-2][1] for e in evidence], f"epochs {evidence[0][-2][0]} -> {evidence[0][-1][0]}"


def _convergence(row: Mapping[str, Any]) -> str | None:
    last = _last_gains(row)
    if last is None:
        return None
    gains, epochs = last
    worst = max(gains)
    state = ("converged by hhlib's rule" if worst < CONVERGENCE_TOLERANCE
             else "still improving: train longer")
    return f"last evaluation gain per seed ({epochs}): {', '.join(f'{g:+.3f}' for g in gains)}; {state} " \
           f"(tolerance {CONVERGENCE_TOLERANCE})"


def training_readings(metrics: Mapping[str, Any], method: str = "hybridhash") -> list[str]:
    """Notebook 02: mAP per code length over seeds, convergence evidence, and whether longer codes help."""
    runs = _runs_by_bits(metrics, method)
    if not runs:
        return [f"No {method} runs are recorded yet: run notebook 02."]
    lines = []
    for bits, row in sorted(runs.items()):
        line = f"{method} {bits} bits: mAP {format_value(row)} over seeds {row.get('seeds', [row.get('seed', 0)])}"
        convergence = _convergence(row)
        lines.append(line + (f"; {convergence}." if convergence else "."))
        unused = unused_bits_reading([row], bits, label="method")
        if unused:
            lines.append(unused)
    if len(runs) > 1:
        short, long = min(runs), max(runs)
        lines.append(compare("code length", f"{long} bits", runs[long], f"{short} bits", runs[short],
                             claim="longer codes retrieve better"))
    return lines


def evaluation_readings(metrics: Mapping[str, Any], method: str = "hybridhash") -> list[str]:
    """Notebook 03: mAP against the paper's figure where one is recorded, tie effects, radius-2 lookup."""
    runs = _runs_by_bits(metrics, method)
    if not runs:
        return [f"No evaluated {method} runs are recorded yet: run notebooks 02 and 03."]
    reference = metrics.get("paper_reference") or {}
    paper = {int(k): v for k, v in (reference.get("map") or {}).items() if v is not None}
    lines = []
    for bits, row in sorted(runs.items()):
        line = f"{bits} bits: mAP {format_value(row)}"
        if row.get("map_tie_aware") is not None:
            line += f" (tie-aware {row['map_tie_aware']:.3f}: ties {'change' if abs(row['map_tie_aware'] - row['map']) >= 0.001 else 'do not change'} the figure)"
        if bits in paper:
            gap = row["map"] - paper[bits]
            line += (f"; the paper reports {paper[bits]:.3f} ({reference.get('source')}): "
                     f"ours is {abs(gap):.3f} {'above' if gap > 0 else 'below'} it")
        if row.get("precision_within_radius") is not None:
            line += (f"; precision within Hamming radius 2: {format_value(row, 'precision_within_radius')}, "
                     f"{row.get('mean_returned_within_radius', float('nan')):.0f} items returned per query on average")
        lines.append(line + ".")
    if not paper:
        lines.append("The paper gives no figure for this dataset and setting, so there is nothing to compare with.")
    return lines


def tsne_readings(metrics: Mapping[str, Any]) -> list[str]:
    """Notebook 04: how well classes separate in the t-SNE maps (silhouette; 1 = apart, 0 = overlapping)."""
    separation = (metrics.get("tsne") or {}).get("separation") or {}
    if not separation:
        return ["No t-SNE separation is recorded yet: run notebook 04."]
    lines = []
    for bits, scores in sorted(separation.items(), key=lambda item: int(item[0])):
        lines.append(f"{bits} bits: class silhouette in the t-SNE map {scores['continuous']:.2f} for the continuous "
                     f"outputs and {scores['codes']:.2f} for the binary codes (1: classes apart, 0: overlapping); "
                     + _separation_verdict(scores["continuous"], scores["codes"]))
    return lines


def _separation_verdict(continuous: float, codes: float) -> str:
    if max(continuous, codes) < SEPARATED:
        return "the classes overlap in both maps."
    if continuous - codes < 0.05:
        return "binarising loses little of the class structure."
    return "binarising blurs the class structure."


def _baseline(rows: Sequence[Mapping[str, Any]], bits: int) -> Mapping[str, Any] | None:
    return next((r for r in rows if r.get("study") == "baseline" and int(r["bits"]) == bits), None)


def _ranking(rows: Sequence[Mapping[str, Any]], bits: int) -> list[str]:
    methods = [r for r in rows if int(r["bits"]) == bits and r.get("study") in ("baseline", "loss")]
    lines = []
    for family in sorted({r.get("family", "symmetric") for r in methods}):
        members = sorted((r for r in methods if r.get("family", "symmetric") == family), key=lambda r: -r["map"])
        ranked = " > ".join(f"{r['loss']} {format_value(r)}" for r in members)
        lines.append(f"method ranking, {family} family, {bits} bits: {ranked}.")
    return lines


def ablation_readings(metrics: Mapping[str, Any]) -> list[str]:
    """Notebook 05: each change against the paper's method, judged by ``SPREAD_RULE``, the method ranking,
    convergence and (with ``ablation_search``) the recipes the search chose."""
    rows = list(metrics.get("ablations", []))
    if not rows:
        return ["No ablation runs are recorded yet: run notebook 05."]
    lines = [f"Rule: {SPREAD_RULE}."]
    for bits in sorted({int(r["bits"]) for r in rows}):
        base = _baseline(rows, bits)
        if base is None:
            continue
        for row in rows:
            if int(row["bits"]) != bits or row.get("study") in ("baseline", "loss"):
                continue
            topic = f"{row['study'].replace('_', ' ')}, {bits} bits"
            lines.append(compare(topic, "hybridhash (paper)", base, row["name"], row, PAPER_CLAIMS.get(row["study"])))
        lines += _ranking(rows, bits)
        lines.append(_convergence_summary([r for r in rows if int(r["bits"]) == bits], bits))
        unused = unused_bits_reading(rows, bits)
        if unused:
            lines.append(unused)
    return lines + search_readings(metrics)


def unused_bits_reading(rows: Sequence[Mapping[str, Any]], bits: int, label: str = "name") -> str | None:
    """Which configurations at ``bits`` left bits constant over the database in some seed, with the count per seed.

    A constant bit carries no information: such codes retrieve with fewer than ``bits`` bits. Collapsed
    configurations are left out (their rows already say "not a result"); rows recorded before the
    trainer kept ``constant_bits`` give no sentence.

    Args:
        rows: aggregated rows (``hhlib.spread.aggregate_seeds``) carrying ``constant_bits_per_seed``.
        bits: the code length to read.
        label: the field that names a configuration (``"name"`` in notebook 05, ``"method"`` in 02).

    Returns:
        One sentence, or None when no row at ``bits`` records its constant bits.
    """
    judged = [r for r in rows if int(r["bits"]) == bits and r.get("constant_bits_per_seed") is not None
              and not r.get("collapsed")]
    if not judged:
        return None
    unused = [r for r in judged if max(r["constant_bits_per_seed"]) > 0]
    if not unused:
        return (f"unused bits, {bits} bits: no bit is constant over the database in any seed "
                f"({len(judged)} configuration{'s' if len(judged) > 1 else ''}): every bit carries information.")
    listed = "; ".join(f"{r[label]} {', '.join(map(str, r['constant_bits_per_seed']))}" for r in unused)
    return (f"unused bits, {bits} bits: {len(unused)} of {len(judged)} configurations leave bits constant over the "
            f"database (count per seed): {listed}. A constant bit carries no information, so those codes retrieve "
            f"with fewer than {bits} bits; the others use every bit.")


def _convergence_summary(rows: Sequence[Mapping[str, Any]], bits: int) -> str:
    """How many configurations converged by hhlib's rule (every seed), naming those still improving."""
    judged = {r["name"]: _last_gains(r) for r in rows}
    judged = {name: last for name, last in judged.items() if last is not None}
    if not judged:
        return f"convergence, {bits} bits: no run was evaluated twice, so there is no evidence either way."
    improving = {name: max(gains) for name, (gains, _) in judged.items() if max(gains) >= CONVERGENCE_TOLERANCE}
    epochs = next(iter(judged.values()))[1]
    line = (f"convergence, {bits} bits: {len(judged) - len(improving)} of {len(judged)} configurations gained under "
            f"{CONVERGENCE_TOLERANCE} mAP ({epochs}) for every seed")
    if not improving:
        return line + "."
    listed = ", ".join(f"{name} ({gain:+.3f})" for name, gain in sorted(improving.items(), key=lambda item: -item[1]))
    return line + f"; still improving (largest gain over seeds): {listed}: their figures are lower bounds."


def _standing(row: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """Where ``row`` stands against the paper's method by ``SPREAD_RULE``: ahead, behind or level (or unjudged)."""
    if row.get("collapsed") or base.get("collapsed"):
        return "unjudged (collapsed codes)"
    d = difference(row, base)
    if d["beyond"] is None:
        return "unjudged (one seed)"
    if not d["beyond"]:
        return "level"
    return "ahead" if d["delta"] > 0 else "behind"


def _method_rank(rows: Sequence[Mapping[str, Any]], bits: int, names: set[str]) -> tuple[int, int] | None:
    """The paper's method's place among the methods (baseline and losses) named in ``names`` at ``bits``, and their count."""
    methods = sorted((r for r in rows if int(r["bits"]) == bits and r.get("study") in ("baseline", "loss")
                      and r["name"] in names), key=lambda r: -r["map"])
    places = [i for i, r in enumerate(methods, 1) if r.get("study") == "baseline"]
    return (places[0], len(methods)) if places and len(methods) > 1 else None


def configuration_pairs(longer: Sequence[Mapping[str, Any]],
                        shorter: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``(shorter row, longer row)`` of every configuration (name, code length) both studies trained, in ``longer``'s order."""
    before = {(r["name"], int(r["bits"])): r for r in shorter}
    return [(before[(r["name"], int(r["bits"]))], r) for r in longer if (r["name"], int(r["bits"])) in before]


def _stopped_improving(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], bits: int) -> str | None:
    """Which configurations gained no more than the spread from the longer training (hhlib's plateau evidence).

    ``pairs`` holds (shorter, longer) rows of the same configuration; both train a whole schedule, so a
    gain within ``SPREAD_RULE`` means more training did not help: the shorter run had stopped improving.
    """
    judged = [(before, row, difference(row, before)) for before, row in pairs
              if not (row.get("collapsed") or before.get("collapsed"))]
    judged = [(before, row, d) for before, row, d in judged if d["beyond"] is not None]
    if not judged:
        return None
    gained = {row["name"]: d["delta"] for _, row, d in judged if d["beyond"] and d["delta"] > 0}
    lost = {row["name"]: d["delta"] for _, row, d in judged if d["beyond"] and d["delta"] < 0}
    stopped = [row["name"] for _, row, _ in judged if row["name"] not in gained]
    epochs = f"{judged[0][0]['epochs']} -> {judged[0][1]['epochs']} epochs"
    line = (f"plateau, {bits} bits ({epochs}): {len(stopped)} of {len(judged)} configurations gained no more than "
            f"the spread from the longer training, so they had stopped improving")
    line += f" ({', '.join(stopped)})" if stopped else ""
    if lost:
        line += (f"; of those, the longer training lowered {_by_size(lost, reverse=False)} beyond the spread: past "
                 f"their best, more training hurts them")
    return line + (f"; still improving beyond the spread: {_by_size(gained)}." if gained else ".")


def _better_length_line(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], bits: int) -> str | None:
    """Verdicts with every configuration at the better of its two lengths, when the paper's method lost from the longer one.

    A configuration past its best would otherwise be judged at a length that hurts it. The better length is the
    one with the higher mean; picking it per configuration favours every one alike, so the sentence says so.
    """
    pairs = [(before, row) for before, row in pairs if not (row.get("collapsed") or before.get("collapsed"))]
    base = next(((before, row) for before, row in pairs if row.get("study") == "baseline"), None)
    if base is None or len(pairs) < 2:
        return None
    lowered = difference(base[1], base[0])
    if not (lowered["beyond"] and lowered["delta"] < 0):
        return None
    best = {row["name"]: max((before, row), key=lambda r: r["map"]) for before, row in pairs}
    base_best = best.pop(base[1]["name"])
    verdicts = "; ".join(f"{name} {format_value(row)} ({row['epochs']}) {_standing(row, base_best)}"
                         for name, row in best.items())
    return (f"each at its better length, {bits} bits (the length with the higher mean, chosen per configuration "
            f"after the fact, so every figure is its best of two): against {base[1]['name']} {format_value(base_best)} "
            f"({base_best['epochs']} epochs): {verdicts}.")


def _by_size(deltas: Mapping[str, float], reverse: bool = True) -> str:
    """``"a (+0.020), b (+0.010)"``: names with their change, largest first (smallest first with ``reverse=False``)."""
    ordered = sorted(deltas.items(), key=lambda item: item[1], reverse=reverse)
    return ", ".join(f"{name} ({delta:+.3f})" for name, delta in ordered)


def _length_lines(longer: Sequence[Mapping[str, Any]], shorter: Sequence[Mapping[str, Any]], bits: int) -> list[str]:
    base_long, base_short = _baseline(longer, bits), _baseline(shorter, bits)
    pairs = [(before, row) for before, row in configuration_pairs(longer, shorter) if int(row["bits"]) == bits]
    lines, changed, same = [], [], 0
    for before, row in pairs:
        lines.append(f"{row['name']}, {bits} bits: {format_value(before)} after {before['epochs']} epochs, "
                     f"{format_value(row)} after {row['epochs']} ({row['map'] - before['map']:+.3f}).")
        if row.get("study") == "baseline" or base_long is None or base_short is None:
            continue
        was, now = _standing(before, base_short), _standing(row, base_long)
        if was == now:
            same += 1
        else:
            changed.append(f"{row['name']} {was} -> {now}")
    if base_long is not None and base_short is not None:
        verdict = (f"verdicts against the paper's method, {bits} bits (ahead / level / behind by the spread rule): "
                   f"{same} of {same + len(changed)} unchanged by the longer training")
        lines.append(verdict + (f"; changed: {', '.join(changed)}." if changed else "."))
    plateau = _stopped_improving(pairs, bits)
    if plateau:
        lines.append(plateau)
    better = _better_length_line(pairs, bits)
    if better:
        lines.append(better)
    names = {row["name"] for _, row in pairs}
    ranks = _method_rank(shorter, bits, names), _method_rank(longer, bits, names)
    if None not in ranks:
        lines.append(f"the paper's loss ranks {ranks[0][0]} of {ranks[0][1]} methods after the shorter training "
                     f"and {ranks[1][0]} of {ranks[1][1]} after the longer.")
    return lines


def longer_training_readings(longer: Mapping[str, Any], shorter_study: str | Path | None) -> list[str]:
    """Notebook 05 trained longer (``make converged``) against the same study's shorter runs.

    For every configuration in both: its mAP after each length; then, per code length, which
    verdicts against the paper's method (ahead, level or behind by ``SPREAD_RULE``) the longer
    training changes, and the paper's loss's place in the method ranking at both lengths.

    Args:
        longer: the longer study's metrics (``ablations`` rows).
        shorter_study: the shorter study's ``metrics.json`` (None: no comparison, no sentence).

    Returns:
        The sentences ([] without ``shorter_study``).

    Raises:
        FileNotFoundError: ``shorter_study`` does not exist.
    """
    if shorter_study is None:
        return []
    from hhlib import artifacts

    path = Path(shorter_study)
    if not path.is_file():
        raise FileNotFoundError(f"shorter_study {path} does not exist: render the study first (make reproduce)")
    shorter = artifacts.read_metrics(path)["ablations"]
    rows = list(longer.get("ablations", []))
    lines = []
    for bits in sorted({int(r["bits"]) for r in rows}):
        lines += _length_lines(rows, shorter, bits)
    return lines or [f"No configuration of this study is in {path}: nothing to compare."]


SEARCH_OUTCOME_FIELDS = ("trial", "val_map", "collapsed", "excluded", "chosen")  # a search point's result, not its values
SEARCH_POINT_FIELDS = (*SEARCH_OUTCOME_FIELDS, "loss_params")  # everything besides its training fields


def _recipe(point: Mapping[str, Any]) -> str:
    """``"lr 0.002, alpha 0.5"``: a search point's training fields, then its loss weights."""
    values = {**{k: v for k, v in point.items() if k not in SEARCH_POINT_FIELDS}, **point.get("loss_params", {})}
    return ", ".join(f"{k} {_value(v)}" for k, v in values.items())


def _same_but_lr(point: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two search points differ at most in lr (the collapse margin's neighbours)."""
    return all(point[k] == v for k, v in other.items() if k not in ("lr", *SEARCH_OUTCOME_FIELDS))


def _value(value: Any) -> str:
    return "None (the loss's own rule)" if value is None else str(value)


def _weights(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in point["loss_params"].items())


def _moved_weights_reading(name: str, points: Sequence[Mapping[str, Any]]) -> str | None:
    """The line for a run whose chosen loss weights are not its loss's defaults (None: they are, or no weight grid).

    The first stage trains every point with the default weights, so trial 0 carries them.
    """
    chosen = next(p for p in points if p["chosen"])
    default = points[0].get("loss_params")
    if not default or chosen["loss_params"] == default:
        return None
    fields = {k: v for k, v in chosen.items() if k not in SEARCH_POINT_FIELDS}
    same_recipe = next(p for p in points if p["loss_params"] == default and all(p[k] == v for k, v in fields.items()))
    return (f"search, {name}: trains with {_weights(chosen)} (validation mAP {chosen['val_map']:.3f}), not its "
            f"default {_weights(same_recipe)} ({same_recipe['val_map']:.3f} at the same {_recipe(fields)}).")


def search_readings(metrics: Mapping[str, Any]) -> list[str]:
    """Notebook 05: which recipes the validation search chose, and why where it is not the best trial.

    Reads ``ablation_search`` (hhlib.tuning.search_summary, saved by notebook 05); nothing without it.
    """
    from hhlib.search import best_trial  # the search's own tie rule

    searched = metrics.get("ablation_search") or {}
    lines = []
    for name, points in searched.items():
        chosen = next(p for p in points if p["chosen"])
        best = best_trial(points)
        if best is chosen:
            continue
        causes = "; ".join(_recipe(p) for p in points if p["collapsed"] and p is not best and _same_but_lr(p, best))
        reason = "it collapsed" if best["collapsed"] else f"{causes} collapsed"
        lines.append(f"search, {name}: trains at {_recipe(chosen)} (validation mAP {chosen['val_map']:.3f}), not at its "
                     f"best validation trial, {_recipe(best)} ({best['val_map']:.3f}), because {reason}: hhlib.search "
                     f"skips a collapsed grid point and the learning rate just below it (the collapse margin).")
    if searched:
        lines.append(f"search: {len(searched) - len(lines)} of {len(searched)} searched runs train with their best "
                     f"validation trial's recipe (the same grid for every run, on a validation split of the training images).")
    with_weights = {name: points for name, points in searched.items() if points[0].get("loss_params")}
    moved = [line for line in (_moved_weights_reading(n, p) for n, p in with_weights.items()) if line]
    if with_weights:
        lines += moved + [f"search, loss weights: {len(with_weights) - len(moved)} of {len(with_weights)} runs with a "
                          "weight grid keep their loss's default weights (the same number of weight points for every loss, the "
                          "default among them, tried at the training recipe the first stage chose)."]
    return lines
