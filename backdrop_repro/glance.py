"""The README's *Results at a glance* block, generated from the committed results (never typed).

``python -m backdrop_repro.glance`` rewrites the block between the markers
``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md; ``--check`` exits with 1 if
the block differs from what the results give (the test suite runs the check) and writes nothing;
``--readme PATH`` names another file. ``--help`` prints the usage, an unknown flag is an error
(exit 2), and nothing is written on any error. A README that is a symbolic link stays one (its
target is rewritten). A summary whose own ``"profile"`` is another profile, an unreadable summary
and a README without the two markers in order are one-line errors naming the file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from . import paths, profiles, report

START, END = "<!-- results:start -->", "<!-- results:end -->"


class GlanceError(ValueError):
    """A summary or README glance cannot use (one line naming the file)."""


def _load(profile: str, name: str) -> Optional[dict]:
    """``results/<profile>/<name>.json``, or None if absent; :class:`GlanceError` naming the file if it
    cannot be read, is not a JSON object, or is the summary of another profile."""
    path = paths.output_root() / "results" / profile / f"{name}.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GlanceError(f"{path}: cannot be read ({err}); regenerate it from its records") from None
    if not isinstance(data, dict):
        raise GlanceError(f"{path}: not a summary (a JSON {type(data).__name__}, not an object)")
    if data.get("profile") != profile:
        raise GlanceError(f"{path}: a summary of profile {data.get('profile')!r}, not {profile!r}; "
                          "regenerate it from this profile's records")
    return data


def _scale_phrase(s: dict) -> str:
    """``small scale 0.505 (chance 0.5), large scale 0.819 (chance 0.5)`` for no backdrop, or ''."""
    base = next((r for r in s["summary"] if r["study"] == "grid" and r["config"] == "none"), None)
    if not base or not base.get("scales") or len(base["scales"]) != 2:
        return ""
    return ", ".join(f"{n} scale {x['summary']['mean']:.3f} (chance {x['chance']:g})"
                     for n, x in zip(("small", "large"), base["scales"]))


def _carried(c: dict) -> str:
    d = c.get("scale_deltas")
    if not d or not all(d) or len(d) != 2:
        return ""
    return f" [large scale {report.fmt_ci(d[1])}, small scale {report.fmt_ci(d[0])}]"


def _gains(v: dict) -> list[dict]:
    """The comparisons of a GP verdict whose status (read from the JSON) is a gain."""
    return [c for c in v["comparisons"] if (c.get("claim") or {}).get("status") in report.GAINS]


def _where(c: dict) -> list[str]:
    """The scales whose paired interval lies above 0 (from the comparison's per-scale deltas)."""
    d = c.get("scale_deltas")
    if not d or not all(d) or len(d) != 2:
        return []
    return [nm for nm, x in zip(("small", "large"), d) if x.get("low") is not None and x["low"] > 0]


def _status_words(statuses: list[str]) -> str:
    """``significant gains, not shown relevant`` etc.: the statuses present, in grammar order."""
    words = {"relevant gain": "relevant gain (clears the ±{m:g} margin)",
             "significant gain": "significant gain, not shown relevant (margin ±{m:g})",
             "contradicted": "contradicted", "equivalent": "equivalent to no change",
             "not confirmed": "not confirmed", "inconclusive": "inconclusive", "unfinished": "unfinished, no claim"}
    return "; ".join(f"{statuses.count(st)}× {words[st].format(m=report.MARGIN)}" if statuses.count(st) > 1 else
                     words[st].format(m=report.MARGIN) for st in report.STATUSES if st in statuses)


def gp_claim(profile: str = "replication") -> list[str]:
    """One line: the GP claim's statuses at ``profile`` (per comparison, read from the JSON), with the scale
    each gain sits on and whether each scale was tested (``scales_tested``)."""
    s = _load(profile, "gp_sweep")
    if s is None:
        return []
    v = s["verdict"]
    comps = [c for c in v["comparisons"] if c.get("claim")]
    if not comps:
        return [f"- **GP task** (profile `{profile}`): no verdict yet ({s['n_runs']}/{s['n_planned']} runs)."]
    statuses = [c["claim"]["status"] for c in comps]
    where = sorted({w for c in _gains(v) for w in _where(c)})
    untested = [x["name"] for x in v.get("scales_tested") or [] if not x["tested"]]
    head = _status_words(statuses)
    if where:
        head += f", on the {' and '.join(where)} scale{'s' if len(where) > 1 else ''}"
    if untested:
        head += f"; {' and '.join(untested)} scale not tested"
    each = "; ".join(f"`{c['name']}` {report.fmt_ci(c)}{_carried(c)}: {c['claim']['status']}" for c in comps)
    n = v["baseline"]["n"] if v.get("baseline") else 0
    partial = "" if s["complete"] else f" (provisional: {s['n_runs']}/{s['n_planned']} runs)"
    lr = (v.get("learned") or {}).get("scales")
    learned = ""
    if lr and len(lr) == 2:
        learned = " Without backdrop: " + ", ".join(f"{nm} scale {report.learned_text(t)}"
                                                    for nm, t in zip(("small", "large"), lr)) + "."
    return [f"- **Backdrop on the 2-scale GP task: {head}** (profile `{profile}`, "
            f"{v.get('design', {}).get('kind', '')} design, {n} seeds{partial}): {each} (Δ test accuracy vs no "
            f"backdrop, 95 % CI).{learned}"]


def first_screen() -> list[str]:
    """Five or six plain lines: what was tested and found, where each gain sits against the margin, what
    was not tested, the paper scale's status. Every word read from the JSON statuses and numbers."""
    out = []
    s = _load("replication", "gp_sweep")
    if s and s["verdict"].get("comparisons"):
        v = s["verdict"]
        comps = [c for c in v["comparisons"] if c.get("claim")]
        m = comps[0]["claim"]["m"] if comps else 0
        d = s["settings"]["data"]
        out.append(f"- **Tested:** does backdrop (random 0/1 masks on the gradient, at a fine and a coarse scale) "
                   f"raise the test accuracy of a 2-scale CNN on the paper's GP task shrunk by 4 ({d['size']}² images, "
                   f"{d['per_class']} per class)? Profile `replication`: {v['design']['kind']}, {v['baseline']['n']} "
                   f"seeds, {m} settings against no backdrop, Holm over {m} (*Holm*: p-values adjusted for the number "
                   "of comparisons asked together).")
        out.append("- **Found:** " + "; ".join(
            f"`{c['name']}` {report.fmt_ci(c)}: {c['claim']['status']}" for c in comps)
            + f" (margin of relevance ±{report.MARGIN:g}: a change smaller is too small to matter; "
              f"{'none' if not any(c['claim']['status'] == 'relevant gain' for c in comps) else 'some'} "
              "shown to clear it).")
        gains = _gains(v)
        tested = v.get("scales_tested") or []
        lr = (v.get("learned") or {}).get("scales") or []
        line = []
        for c in gains:
            w = _where(c)
            d2 = c.get("scale_deltas") or []
            if w and len(d2) == 2:
                line.append(f"`{c['name']}` on the {' and '.join(w)} scale (large {report.fmt_ci(d2[1])}, "
                            f"small {report.fmt_ci(d2[0])})")
        txt = "- **Where:** " + ("; ".join(line) if line else "no gain to place") + "."
        conf = _load("confirm", "confirm")
        elsewhere = (" here; the pre-registered confirmatory study below tests it where the network learns the small "
                     "scale partly" if conf and conf.get("status") == "complete" else
                     ", so the fine-mask half of the paper's claim is open")
        for x, t in zip(tested, lr):
            if not x["tested"]:
                txt += (f" Not tested: the {x['name']} scale, which no network learns (no backdrop "
                        f"{report.learned_text(t)}){elsewhere}.")
        out.append(txt)
    d = _load("learnability", "learnability")
    if d and d.get("answer"):
        from .experiments.learnability.report import question_blocks

        sts = [r["claim"]["status"] for _, b, _ in question_blocks(d) for r in b["comparisons"] if r.get("claim")]
        out.append(f"- **Learnability edge** (exploratory, Holm over {len(sts)}): "
                   f"{sum(x in report.GAINS for x in sts)} significant gains; " + _status_words(sts) + ".")
    r = _load("scaled", "nondecomposable")
    if r and (r.get("headline") or {}).get("backdrop"):
        h = r["headline"]
        row = h["vs_full"].get(h["backdrop"])
        if row and row.get("claim"):
            out.append(f"- **ROC-AUC loss** (profile `scaled`, exploratory): `{h['backdrop']}` (chosen on validation) "
                       f"against full batch {report.fmt_ci(row)}: {row['claim']['status']}.")
    out += confirm_line("confirm")
    paper = _load("paper", "gp_sweep")
    cpu = _load("paper-cpu", "gp_sweep")
    if paper is not None:
        state = f"{paper['n_runs']}/{paper['n_planned']} runs of the GPU grid recorded."
    elif cpu is not None:
        state = paper_cpu_text(cpu)
    else:
        state = ("not run: no GPU has been available to this project; the CPU route (profile `paper-cpu`: no backdrop "
                 "vs the authors' setting, 4 seeds, about an hour per run on one core) is prepared, not started.")
    out.append("- **Paper scale (1024²):** " + state)
    return out


#: the bench's committed projections of one run (``bench/bench_train.py --formulations``)
BENCH = Path("bench") / "results" / "bench_train_formulations.txt"


def bench_projection_min(train_samples: float, eval_forwards: float, formulation: str = "keep blocked, im2col stem",
                         path: Optional[Path] = None) -> Optional[float]:
    """Minutes the committed bench projects for a width-64 1024² run of ``train_samples`` training samples and
    ``eval_forwards`` evaluation forwards on one core (its "one paper run" line of ``formulation``, scaled by
    the work, an evaluation forward counted at the bench's fraction of a step); None when the file or the line
    is missing."""
    import re

    root = paths.checkout_root()
    f = path or (root / BENCH if root is not None else None)
    if f is None:
        return None
    try:
        text = f.read_text()
    except OSError:
        return None
    unit = re.search(r"one paper run = (\d+) training samples \+ (\d+) evaluation forwards", text)
    frac = re.search(r"([0-9.]+) of a step's FLOPs per sample at width 64", text)
    line = re.search(rf"width 64, {re.escape(formulation)}\s+one paper run\s+(\d+) min on 1 core", text)
    if not (unit and frac and line):
        return None
    n_train, n_eval, k = float(unit.group(1)), float(unit.group(2)), float(frac.group(1))
    return float(line.group(1)) * (train_samples + k * eval_forwards) / (n_train + k * n_eval)


def timing_text(cpu: dict) -> str:
    """Wall time per run measured from a GP table's records, one clause per arm (runs of one arm do the same
    work only up to where the convergence rule stops them), each beside the bench's projection for the work
    that arm's runs did on average; ``""`` without records."""
    from .experiments.gp_sweep import report as gp_report

    runs = cpu.get("runs") or []
    labels = list(dict.fromkeys(r["label"] for r in runs))
    parts = []
    for label in labels:
        t = gp_report.timing([r for r in runs if r["label"] == label])
        if t is None:
            continue
        proj = bench_projection_min(t["train_samples_mean"], t["eval_forwards_mean"])
        parts.append(f"`{label}` {t['mean_s'] / 60:.0f} min on average ({t['min_s'] / 60:.0f}–{t['max_s'] / 60:.0f} min "
                     f"over {t['runs']} runs, {t['epochs_mean']:.0f} epochs on average"
                     + (f"; the bench projects {proj:.0f} min for the same work" if proj is not None else "") + ")")
    if not parts:
        return ""
    return (" Wall time per run, measured (one core each, two at a time, on a machine that also ran other work, so an "
            "upper bound; runs end when the convergence rule stops them): " + "; ".join(parts) + ".")


def paper_cpu_text(cpu: dict) -> str:
    """The paper scale's CPU route, read from its tables: per-scale learning without backdrop, the authors'
    setting against it (descriptive: 4 seeds, with the MDE), the likelihood classifier, the wall time per run
    beside the bench's projection, and what still needs a GPU."""
    v = cpu["verdict"]
    head = (f"{cpu['n_runs']}/{cpu['n_planned']} runs of the CPU route (profile `paper-cpu`: no backdrop vs the authors' "
            f"setting, {len(profiles.get('paper-cpu').sweep.seeds)} seeds"
            + (", descriptive" if (cpu.get("design") or {}).get("kind") == "descriptive" else ""))
    if not cpu["complete"]:
        return head + ") recorded; no result is read before all are in; the powered grid still needs a GPU."
    head += ", [executed notebook](results/paper-cpu/notebooks/gp-training.ipynb))"
    lr = (v.get("learned") or {}).get("scales") or []
    names = ("small", "large")
    learned = "; ".join(f"{n} scale {report.learned_text(t)}" for n, t in zip(names, lr))
    comps = [c for c in v.get("comparisons", []) if c.get("claim")]
    arms = []
    for c in comps:
        d2 = c.get("scale_deltas") or []
        per = (f"; small scale {report.fmt_ci(d2[0])}, large scale {report.fmt_ci(d2[1])}" if len(d2) == 2 else "")
        mde = c["claim"].get("mde")
        why = c["claim"].get("unfinished_reason") if c["claim"].get("unfinished") else None
        status = f"unfinished runs, no claim: {why}" if why else c["claim"]["status"]   # why names the arm(s)
        arms.append(f"`{c['name']}` against it {report.fmt_ci(c)} ({status}"
                    + (f"; MDE {mde:.2f} at {c['n']} seeds" if mde is not None else "") + per + ")")
    tested = v.get("scales_tested") or []
    small = next((t for t in tested if t["name"] == "small"), None)
    small_txt = ""
    if small is not None and not small["tested"]:
        small_txt = (f" So at the paper's scale neither arm learns anything of the small scale beyond a negligible margin "
                     f"(highest mean {small['highest_mean']:.3f}, chance {small['chance']:g}), and these runs cannot speak "
                     "to the fine-mask half of the claim.")
    ref = (cpu.get("reference") or {}).get("main")
    ref_txt = (f" The likelihood classifier ({'exact' if ref['exact'] else 'approximate'}) reaches "
               f"{ref['test_accuracy']:.3f} (small scale {ref['small_scale_accuracy']:.3f}, large scale "
               f"{ref['large_scale_accuracy']:.3f})." if ref else "")
    time_txt = timing_text(cpu)
    return (head + f": without backdrop {learned}; " + "; ".join(arms) + "." + small_txt + ref_txt + time_txt
            + " The powered grid (every fine and coarse level, ≥ 5 seeds) still needs a GPU (the prepared command above).")


def confirm_line(profile: str = "confirm") -> list[str]:
    """The pre-registered confirmatory study of the fine-mask half: running (no outcome read) or its answers."""
    c = _load(profile, "confirm")
    pre = f"results/{profile}/preregistration.md"
    if c is None:
        return []
    if c.get("status") != "complete":
        rec = c.get("records") or {}
        return [f"- **Fine-mask half, confirmatory** (profile `{profile}`, [pre-registered]({pre}) before its first "
                f"run): running, {rec.get('valid', 0)} of {rec.get('planned', '?')} runs in; as pre-registered, no "
                "result is read before all runs are in."]
    parts = [f"{r['task']} `{r['label']}` {report.fmt_ci(r)}: {r['status']}" for r in c.get("comparisons", [])]
    nb = f"results/{profile}/notebooks/confirm.ipynb"
    return [f"- **Fine-mask half, confirmatory** (profile `{profile}`, [pre-registered]({pre}), Holm over "
            f"{len(parts)}, [executed notebook]({nb})): " + "; ".join(parts) + "."
            + (f" {c['meaning']}" if c.get("meaning") else "")]


def gp_block(profile: str = "scaled") -> list[str]:
    """Bullet lines for the GP sweep of ``profile`` (empty if it has no results)."""
    s = _load(profile, "gp_sweep")
    if s is None:
        return []
    v = s["verdict"]
    nb = f"results/{profile}/notebooks/gp-training.ipynb"
    kind = v.get("design", {}).get("kind", "")
    lines = [f"- **2-scale GP task, profile `{profile}`** ({kind}; {s['n_runs']}/{s['n_planned']} runs; "
             f"[executed notebook]({nb})): {v['overall']}"]
    from .experiments.gp_sweep.report import study_lines

    lines += [f"  - {t}" for t in study_lines(v)]
    if not s["complete"]:
        lines.append(f"  - Provisional: {s['n_planned'] - s['n_runs']} planned runs are not recorded yet.")
    return lines


def nd_claim(profile: str = "scaled") -> list[str]:
    """One line: the non-decomposable claim's status (validation-chosen backdrop vs full batch), read from
    the JSON (its ``headline``), never re-judged."""
    r = _load(profile, "nondecomposable")
    if r is None:
        return []
    h = r.get("headline") or {}
    row = (h.get("vs_full") or {}).get(h.get("backdrop")) if h.get("backdrop") else None
    if row is None or not row.get("claim"):
        return []
    c = row["claim"]
    return [f"- **Per-sample backdrop against full-batch training on a ROC-AUC loss: {c['status']}** (profile "
            f"`{profile}`, {row['n']} seeds, `{h['backdrop']}` chosen on validation): test AUC "
            f"{report.fmt_ci(row)} (Holm p = {report.fmt_p(row['p_holm'])} over {c['m']})."]


def nd_block(profile: str = "default") -> list[str]:
    """Bullet lines for the non-decomposable experiment of ``profile`` (its verdict, from the results)."""
    r = _load(profile, "nondecomposable")
    if r is None:
        return []
    from .experiments.nondecomposable.report import verdict

    nb = f"results/{profile}/notebooks/non-decomposable.ipynb"
    return [f"- **Non-decomposable loss (ROC-AUC), profile `{profile}`** ([executed notebook]({nb})): {verdict(r)}"]


def repro_block(profile: str = "default", reference: str = "replication") -> list[str]:
    """One line: how the profile's fresh GP runs compare with the committed runs of the same key
    (:func:`~backdrop_repro.experiments.gp_sweep.reproduction.headline`: per-run status, the
    per-configuration rule and its bound)."""
    from .experiments.gp_sweep.reproduction import headline

    if _load(profile, "gp_sweep") is None:
        return []
    return [f"- **Reproduction check** (`make reproduce`, profile `{profile}`, "
            f"[report](results/{profile}/reproduction.md)): {headline(profile, reference)}."]


def learn_claim(profile: str = "learnability") -> list[str]:
    """One line: does backdrop move the learnability edge? (the study's generated answer), marked
    provisional while map cells or the two-scale task have no runs."""
    d = _load(profile, "learnability")
    if d is None or not d.get("answer"):
        return []
    empty = [c for c in d.get("map", []) if not c.get("seeds")]
    from .experiments.learnability.report import twoscale_blocks

    two = twoscale_blocks(d)
    missing = ([f"{len(empty)} of {len(d['map'])} map cells"] if empty else []) + \
              (["the two-scale task"] if not two or not all(t.get("comparisons") for t in two) else [])
    state = f"provisional: {' and '.join(missing)} not run yet" if missing else "complete"
    nb = f"results/{profile}/notebooks/learnability.ipynb"
    link = f"; [executed notebook]({nb})" if (paths.output_root() / nb).is_file() else ""
    return [f"- **Does backdrop move the learnability edge?** (profile `{profile}`, {state}{link}): {d['answer']}"]


def block() -> str:
    claims = gp_claim("replication") + nd_claim("scaled") + learn_claim("learnability")
    details = gp_block("replication") + gp_block("scaled") + nd_block("scaled") + repro_block("default")
    screen = first_screen() if claims else []
    terms = [f"Terms: {report.definitions_text(('margin test', 'TOST', 'MDE'))} Statuses follow one claim grammar "
             "([docs/claims.md](docs/claims.md)); choices made after seeing data are listed under "
             "[Disclosures](#disclosures).", ""] if claims else []
    lines = (["**In short:**", ""] + screen + [""] if screen else []) + terms + \
        (["**Claims** (one line each; details below):", ""] + claims + [""] if claims else []) + \
        (["**Details:**", ""] + details if details else [])
    return "\n".join([START, *lines, END])


DSTART, DEND = "<!-- disclosures:start -->", "<!-- disclosures:end -->"


def disclosures_block() -> str:
    """The README's disclosures block (:mod:`backdrop_repro.disclosures`)."""
    from . import disclosures

    body = disclosures.markdown()
    return "\n".join([DSTART, *([body] if body else []), DEND])


def claims_doc() -> str:
    """``docs/claims.md``: the claim grammar's table and its terms, and the disclosures (generated)."""
    from . import disclosures

    return ("# The claim grammar\n\n*Generated by `python -m backdrop_repro.glance` from `backdrop_repro/report.py` "
            "(`GRAMMAR`, `DEFINITIONS`); do not edit.*\n\nEvery comparison of every experiment is judged by one "
            "function, `backdrop_repro.report.judge`, and stored with its status in the results JSON; the README, "
            "the notebooks and the figures read the status, never the prose. A sentence states the interval's both "
            "ends against 0 and against the margin, with as many decimals as keep each end on its side.\n\n"
            + report.grammar_markdown() + "\n\n" + "\n".join(f"- **{k}**: {v}." for k, v in report.DEFINITIONS.items())
            + "\n- **learning above chance**: decided over seeds (the 95 % interval of the per-seed accuracy lies above "
              "chance); the exact binomial test of the predictions pooled over seeds (which share the test images) is "
              "printed as a description only.\n\n## Disclosures\n\nChoices made after seeing data, per study:\n\n"
            + disclosures.markdown() + "\n")


def _replace(text: str, start: str, end: str, new: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + new + tail


def update(readme: Path, check: bool = False) -> bool:
    """Rewrite (or with ``check`` compare) the results block in ``readme``, its disclosures block when it
    has one, and ``docs/claims.md`` beside it when ``docs/`` exists; True if all were up to date.
    A symbolic link stays a link (its target is written). ``GlanceError`` (one line, naming the
    file) for a missing or unreadable README or markers missing or out of order; nothing is written then."""
    readme = Path(readme)
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise GlanceError(f"{readme}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    i, j = text.find(START), text.find(END)
    if i < 0 or j < 0:
        raise GlanceError(f"{readme} has no {START} ... {END} block")
    if j < i or text.count(START) != 1 or text.count(END) != 1:
        raise GlanceError(f"{readme}: the markers {START} and {END} must each appear once, in that order")
    new = _replace(text, START, END, block())
    if DSTART in new and DEND in new:
        if new.count(DSTART) != 1 or new.count(DEND) != 1 or new.find(DEND) < new.find(DSTART):
            raise GlanceError(f"{readme}: the markers {DSTART} and {DEND} must each appear once, in that order")
        new = _replace(new, DSTART, DEND, disclosures_block())
    docs = readme.resolve().parent / "docs"
    doc_ok = True
    if docs.is_dir():
        doc = docs / "claims.md"
        want = claims_doc()
        doc_ok = doc.is_file() and doc.read_text() == want
        if not check and not doc_ok:
            try:
                paths.write_text(doc, want)
            except OSError as err:
                raise GlanceError(f"{doc}: cannot be written ({err.strerror or err})") from None
    if check:
        return new == text and doc_ok
    if new != text:
        target = readme.resolve() if readme.is_symlink() else readme
        try:
            paths.write_text(target, new)
        except OSError as err:
            raise GlanceError(f"{target}: cannot be written ({err.strerror or err})") from None
    return True


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m backdrop_repro.glance [--check] [--readme PATH]``: 0 up to date / rewritten,
    1 stale (``--check``), 2 an error (one line)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m backdrop_repro.glance",
                                 description="Rewrite (or check) the README's results block from the committed results.")
    ap.add_argument("--check", action="store_true", help="compare only, write nothing; exit 1 if the block is stale")
    ap.add_argument("--readme", type=Path, default=None, help="the file to update (default: README.md of the output root)")
    args = ap.parse_args(argv)
    readme = args.readme if args.readme is not None else paths.output_root() / "README.md"
    try:
        ok = update(readme, check=args.check)
    except (ValueError, OSError) as err:
        print(f"{ap.prog}: error: {err}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
