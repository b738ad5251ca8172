"""Execute the project's notebooks headlessly with papermill (``backdrop-repro notebooks``).

Every notebook's ``parameters`` cell declares ``profile`` (a name) and ``profile_spec`` (None). The kernel
is a fresh process whose table holds only the package's own profiles, so for any other profile (one
registered at run time, or a shipped name replaced) :func:`run_notebooks` also passes ``profile_spec``,
the profile serialised by :meth:`~backdrop_repro.profiles.Profile.to_dict` as JSON; the notebook's first
code cell calls :func:`backdrop_repro.profiles.resolve` with both, which rebuilds and registers it there.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import profiles
from .paths import absolute_env, atomic_path, clean_package_orphans, output_root, results_dir

#: Notebooks in the order ``make reproduce`` runs them (data first, then the experiments).
NOTEBOOKS = ("backdrop-demo", "gp-generate-demo", "gp-training", "non-decomposable")
#: Notebooks run only when named (``backdrop-repro notebooks --profile learnability learnability``): their
#: experiment takes hours and has profiles of its own, so ``make reproduce`` does not run them.
ON_DEMAND = ("learnability", "confirm")
#: parameters a notebook gets from ``run_notebooks`` at every profile but ``smoke``: the confirmatory study's
#: executed copy reads its records only (its runs are trained by ``backdrop-repro confirm``, hours)
READ_ONLY = {"confirm": {"train": False}}

#: the kernel's own log (not the cells' output): only critical messages. ipykernel otherwise
#: prints "[IPKernelApp] WARNING | Kernel is running over TCP without encryption" (the kernel
#: listens on 127.0.0.1 only) and, when the client interrupts it at shutdown, "KeyboardInterrupt
#: caught in kernel" after a run that succeeded. Errors in cells still reach the executed copy.
KERNEL_ARGS = ("--IPKernelApp.log_level=CRITICAL",)


class NotebookError(RuntimeError):
    """A notebook failed: names the cell, the error and the executed copy kept beside it."""


def failed_copy_path(out: Path) -> Path:
    """Where the executed copy of a failed notebook is kept: ``<name>.failed.ipynb`` beside ``out``."""
    return out.with_name(out.stem + ".failed.ipynb")


def _failed_cell(nb: dict) -> tuple[Optional[int], str, str]:
    """``(index among the source notebook's cells, first line of its source, "Ename: value")`` of the
    first cell with an error output in the executed notebook ``nb`` (papermill's injected cells
    are not counted); ``(None, "", "")`` if none holds an error."""
    index = 0
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                src = cell.get("source", "")
                src = "".join(src) if isinstance(src, list) else src
                first = next((line.strip() for line in src.splitlines() if line.strip()), "")
                return index, first[:80], f"{o.get('ename', 'Error')}: {' '.join(str(o.get('evalue', '')).split())[:200]}"
        index += 1
    return None, "", ""


def notebooks_source_dir() -> Path:
    """The folder holding the source notebooks (``notebooks/`` of the checkout)."""
    env = os.environ.get("BACKDROP_REPRO_NOTEBOOKS")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"
    if not path.is_dir():
        raise FileNotFoundError(f"notebooks folder not found at {path}; set BACKDROP_REPRO_NOTEBOOKS")
    return path


#: a markdown link or image: ``[text](target)`` / ``![alt](target "title")``
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
_EXTERNAL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|#|/)")


def rebase_links(text: str, src_dir: str, dst_dir: str) -> str:
    """Rewrite the relative links of markdown ``text`` written for a file in ``src_dir`` so they
    resolve from ``dst_dir`` (both POSIX paths relative to the checkout root). External links
    (``https:``, ``mailto:``), anchors and absolute paths are left alone.
    Example: ``rebase_links("[r](../README.md)", "notebooks", "results/default/notebooks")``
    gives ``"[r](../../../README.md)"``.
    """
    def sub(m: "re.Match") -> str:
        target = m.group(2)
        if _EXTERNAL.match(target):
            return m.group(0)
        path, sep, anchor = target.partition("#")
        if not path:
            return m.group(0)
        new = posixpath.relpath(posixpath.normpath(posixpath.join(src_dir, path)), dst_dir)
        return f"{m.group(1)}{new}{sep}{anchor}{m.group(3)}"

    return _LINK.sub(sub, text)


def profile_summary(name: str, profile: str | profiles.Profile) -> str:
    """What of ``profile`` the notebook ``name`` runs, for the header of its executed copy: the
    numbers come from the profile section that notebook reads (``non-decomposable``: its own
    seeds and settings; the demos: their image sizes and the training data they build), never from
    another notebook's section. ``gp-training`` (and any other name) gets the profile's description
    (the GP sweep's). Example: ``profile_summary("non-decomposable", "default")``.
    """
    p = profiles.get(profile)
    d = p.data
    data = f"the profile's GP training data {d.size}², {d.per_class} images per class, sampler `{d.method}`"
    if name == "non-decomposable":
        from .experiments.nondecomposable.run import banner

        return f"non-decomposable settings: {banner(p.nondecomposable)}"
    if name == "backdrop-demo":
        return f"demo network on {p.demo.size}² inputs, width {p.demo.width}; section 8 counts on {data}"
    if name == "gp-generate-demo":
        return f"demo images {p.demo.gp_size}²; section 6 builds {data}"
    return p.description


def copy_header(name: str, profile: str | profiles.Profile, copy_dir: str, root: Optional[Path] = None) -> str:
    """The note that opens an executed copy: which profile ran, the command, and links (from
    ``copy_dir``, relative to the checkout root) to the source notebook and to the executed copies
    of other profiles that exist under ``root`` (default: :func:`output_root`). No timestamp, so
    re-running gives the same file. Example: ``copy_header("backdrop-demo", "default", "results/default/notebooks")``.
    """
    root = Path(root) if root is not None else output_root()
    p = profiles.get(profile)
    profile = p.name
    src = posixpath.relpath(f"notebooks/{name}.ipynb", copy_dir)
    lines = [f"> **Executed copy at profile `{profile}`** ({profile_summary(name, p)}), written by",
             f"> `backdrop-repro notebooks --profile {profile}` from the source notebook",
             f"> [`notebooks/{name}.ipynb`]({src}) (which is committed with `smoke` outputs for CI)."]
    others = [q for q in profiles.names() if q != profile
              and (root / "results" / q / "notebooks" / f"{name}.ipynb").is_file()]
    if others:
        links = ", ".join(f"[`{q}`]({posixpath.relpath(f'results/{q}/notebooks/{name}.ipynb', copy_dir)})" for q in others)
        lines.append(f"> Executed copies at other profiles: {links}.")
    return "\n".join(lines)


def rewrite_copy(nb: dict, name: str, profile: str | profiles.Profile, copy_dir: str,
                 root: Optional[Path] = None) -> dict:
    """Turn an executed notebook (``nb``, parsed JSON) into a copy that reads right where it sits.

    The first markdown cell's first blockquote (the source's note about its smoke outputs) is
    replaced by :func:`copy_header`; relative links of every markdown cell are rebased from
    ``notebooks/`` to ``copy_dir`` (once: ``metadata.backdrop_repro.links_from`` records it, so
    rewriting a copy again only refreshes its header). Returns ``nb`` (modified in place).
    Example: ``rewrite_copy(json.loads(path.read_text()), "backdrop-demo", "quick", "results/quick/notebooks")``.
    """
    meta = nb.setdefault("metadata", {}).setdefault("backdrop_repro", {})
    rebase = meta.get("links_from") != copy_dir
    header = copy_header(name, profile, copy_dir, root)
    first = True
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if rebase:
            text = rebase_links(text, "notebooks", copy_dir)
        if first:
            text = _replace_note(text, header)
            first = False
        cell["source"] = text
    meta.update(profile=profiles.get(profile).name, links_from=copy_dir)
    return nb


def _replace_note(text: str, header: str) -> str:
    """Replace the first blockquote of ``text`` by ``header`` (or insert it after the title)."""
    lines = text.split("\n")
    quote = [i for i, line in enumerate(lines) if line.startswith(">")]
    if quote:
        start = end = quote[0]
        while end + 1 < len(lines) and lines[end + 1].startswith(">"):
            end += 1
        return "\n".join(lines[:start] + header.split("\n") + lines[end + 1:])
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("#")), 0)
    return "\n".join(lines[:at] + ["", *header.split("\n"), ""] + lines[at:])


def refresh_copies(profile: str | profiles.Profile, names: Optional[Sequence[str]] = None) -> list[Path]:
    """Rewrite the header (and, once, the links) of existing executed copies without re-running
    them: ``python -m backdrop_repro.notebooks --refresh quick``. Returns the rewritten paths."""
    p = profiles.get(profile)
    done = []
    for name in names or NOTEBOOKS + ON_DEMAND:
        path = results_dir(p) / "notebooks" / f"{name}.ipynb"
        if not path.is_file():
            continue
        nb = rewrite_copy(json.loads(path.read_text()), name, p, _copy_dir(path.parent, p.name))
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        done.append(path)
    return done


def _copy_dir(out_dir: Path, profile: str) -> str:
    """Where ``out_dir`` sits relative to the output root (POSIX); ``results/<profile>/notebooks``
    when it lies elsewhere (e.g. a temp dir)."""
    root = output_root().resolve()
    out_dir = Path(out_dir).resolve()
    if out_dir.is_relative_to(root):
        return out_dir.relative_to(root).as_posix()
    return f"results/{profile}/notebooks"


def _relative(path: Path) -> str:
    root = output_root().resolve()
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def strip_timings(nb: dict) -> dict:
    """Remove papermill's timestamps and durations (notebook and cell metadata) in place, so a
    re-run of a deterministic notebook gives an identical file. Example: ``strip_timings(nb)``."""
    pm = nb.get("metadata", {}).get("papermill", {})
    for k in ("start_time", "end_time", "duration", "exception"):
        pm.pop(k, None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
        cell.get("metadata", {}).get("papermill", {}).clear()
    return nb


def _keep_failed(tmp: Path, failed: Path, name: str, err: Exception) -> NotebookError:
    """Move papermill's executed copy of a failed notebook to ``failed`` (it shows the failing cell
    and its traceback) and return the one-line :class:`NotebookError` naming the cell."""
    where, first, what = None, "", ""
    try:
        nb = json.loads(tmp.read_text())
        where, first, what = _failed_cell(nb)
        strip_timings(nb)
        with atomic_path(failed) as t:
            t.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    except (OSError, ValueError):
        failed = None  # type: ignore[assignment]
    if where is None:
        where = getattr(err, "cell_index", None)
        what = f"{getattr(err, 'ename', type(err).__name__)}: {' '.join(str(getattr(err, 'evalue', '')).split())[:200]}"
    cell = f"cell {where}" + (f" (`{first}`)" if first else "")
    shown = None if failed is None else (_relative(failed) if _relative(failed) != failed.name else str(failed))
    kept = f"; the executed copy, with the traceback, is {shown}" if shown else ""
    return NotebookError(f"notebook {name} failed at {cell}: {what}{kept}")


#: ranges of notebook parameters beyond their type (the type is the default's in the notebook's
#: ``parameters`` cell): (low, high, high inclusive); ``mc_draws`` >= 100 because the demo reports the
#: running error at N = 1, 10, 100 and its last draw
PARAM_RANGES = {"seed": (0, None, True), "fine_prob": (0.0, 1.0, False), "coarse_prob": (0.0, 1.0, False),
                "mc_draws": (100, None, True), "demo_size": (1, None, True)}


def notebook_parameters(name: str) -> dict:
    """``{name: default}`` of the notebook's ``parameters`` cell (literal assignments), read without
    running it. Example: ``notebook_parameters("backdrop-demo")["mc_draws"] == 2000``."""
    import ast

    nb = json.loads((notebooks_source_dir() / f"{name}.ipynb").read_text())
    out: dict = {}
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse("".join(cell.get("source", ""))).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[node.targets[0].id] = None
    return out


def check_parameters(names: Sequence[str], parameters: Optional[dict]) -> dict:
    """``parameters`` if every one is declared by at least one of the notebooks ``names`` and has the
    type of its default there (an int where the default is an int; a number where it is a float; an
    int or None where it is None) and a value in :data:`PARAM_RANGES`; else one ``ValueError`` naming
    the parameter and what it accepts, before any notebook runs."""
    parameters = dict(parameters or {})
    declared: dict = {}
    for n in names:
        for k, v in notebook_parameters(n).items():
            declared.setdefault(k, v)
    for key, value in parameters.items():
        if key not in declared:
            raise ValueError(f"parameter {key!r} is not a parameter of {', '.join(names)}; they take "
                             f"{sorted(declared)}")
        default = declared[key]
        if key == "profile_spec":
            raise ValueError("parameter profile_spec is set by run_notebooks from the profile (pass a Profile "
                             "or register it with profiles.register)")
        if key == "profile":
            profiles.check(value)
            continue
        _check_value(key, value, default)
    return parameters


def _check_value(key: str, value: object, default: object) -> None:
    """One ``ValueError`` naming the parameter ``key`` unless ``value`` has the type of its ``default``
    (:func:`check_parameters`) and lies in :data:`PARAM_RANGES`."""
    from .checks import is_int, is_real

    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "a bool"
    elif isinstance(default, int):
        ok, kind = is_int(value), "an int"
    elif isinstance(default, float):
        ok, kind = is_real(value), "a number"
    elif default is None:
        ok, kind = value is None or is_int(value), "an int or None"
    else:
        ok, kind = isinstance(value, type(default)), f"a {type(default).__name__}"
    if not ok:
        raise ValueError(f"parameter {key} must be {kind}, got {value!r}")
    low, high, closed = PARAM_RANGES.get(key, (None, None, True))
    if value is not None and ((low is not None and value < low) or
                              (high is not None and (value > high if closed else value >= high))):
        span = f"[{low}, {high if high is not None else 'inf'}{']' if closed and high is not None else ')'}"
        raise ValueError(f"parameter {key} must be in {span}, got {value!r}")


def check_notebook(name: str, **values: object) -> None:
    """The first code cell of notebook ``name`` calls this with the parameters it received, so they are
    checked where papermill runs the notebook directly (``papermill -p demo_size 0 ...``, without
    :func:`run_notebooks`) as :func:`check_parameters` checks them: the type of the default in the
    notebook's ``parameters`` cell (where its source is found) and :data:`PARAM_RANGES`. One
    ``ValueError`` naming the parameter and what it accepts; prints nothing (the committed outputs stay).
    ``profile`` and ``profile_spec`` are :func:`backdrop_repro.profiles.resolve`'s to check.

    Example: ``check_notebook("backdrop-demo", seed=0, mc_draws=50)`` raises
    ``parameter mc_draws must be in [100, inf), got 50``.
    """
    try:
        declared = notebook_parameters(name)
    except (OSError, ValueError):          # a copy run away from the checkout: the ranges still hold
        declared = {}
    for key, value in values.items():
        _check_value(key, value, declared.get(key, value))


def run_notebooks(profile: str | profiles.Profile = profiles.DEFAULT, names: Optional[Sequence[str]] = None,
                  out_dir: Optional[Path] = None, parameters: Optional[dict] = None) -> list[Path]:
    """Run notebooks with papermill at ``profile`` (a name, resolved once here, or a Profile); write
    executed copies to ``out_dir``.

    ``out_dir`` defaults to ``results/<profile>/notebooks``. Every notebook receives the
    parameter ``profile`` (the name; plus ``parameters``) and, for a profile that is not one of the
    package's own (:func:`~backdrop_repro.profiles.shipped`), ``profile_spec``: the profile as JSON,
    which the kernel rebuilds and registers (module docstring). Each executed copy opens with a note saying
    which profile ran and how (:func:`rewrite_copy`), with links that resolve from where the
    copy sits. Progress bars inside the notebooks are turned
    off (they would be stored as text in the executed copies); one line per notebook reports
    progress instead. Absolute paths in papermill's metadata are made relative, so the
    executed copies can be committed. A notebook that fails raises :class:`NotebookError` (one
    line naming the cell and the error) and keeps its executed copy, traceback included, as
    ``<name>.failed.ipynb`` beside where the copy would be (removed by the next success); the
    kernels' own log is quiet (:data:`KERNEL_ARGS`). Returns the executed notebook paths.
    Example: ``run_notebooks("smoke", ["backdrop-demo"])``.
    """
    import papermill as pm

    absolute_env()          # the kernels run in notebooks/: they inherit absolute folders
    p = profiles.get(profile)
    names = list(names or NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS + ON_DEMAND]
    if unknown:
        raise ValueError(f"names must be among {NOTEBOOKS + ON_DEMAND}, got {unknown}")
    parameters = check_parameters(names, parameters)          # before any notebook runs
    src = notebooks_source_dir()
    out_dir = Path(out_dir) if out_dir else results_dir(p) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_package_orphans(p.name)
    profile = p.name
    params = {"profile": profile, **(parameters or {})}
    if params["profile"] == profile and not profiles.shipped(p):   # the kernel's table lacks it: it travels
        params["profile_spec"] = json.dumps(p.to_dict())
    done = []
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        for i, name in enumerate(names, 1):
            out = out_dir / f"{name}.ipynb"
            nb_params = {**(READ_ONLY.get(name, {}) if profile != "smoke" else {}), **params}
            print(f"[backdrop-repro {i}/{len(names)}] {name} (profile={profile}) -> {_relative(out)}",
                  file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            failed = failed_copy_path(out)
            with atomic_path(out) as tmp:
                try:
                    pm.execute_notebook(str(src / f"{name}.ipynb"), str(tmp), parameters=nb_params, cwd=str(src),
                                        progress_bar=False, kernel_name="python3",
                                        extra_arguments=list(KERNEL_ARGS))
                except pm.PapermillExecutionError as err:
                    raise _keep_failed(tmp, failed, name, err) from None
                failed.unlink(missing_ok=True)
                nb = json.loads(tmp.read_text())
                meta = nb.get("metadata", {}).get("papermill", {})
                meta.update(input_path=f"notebooks/{name}.ipynb", output_path=_relative(out))
                rewrite_copy(nb, name, p, _copy_dir(out_dir, profile))
                strip_timings(nb)
                tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            print(f"[backdrop-repro {i}/{len(names)}] {name} done in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
            done.append(out)
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old
    return done


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="rewrite the header of existing executed notebook copies, "
                                                 "or strip papermill's timings from notebooks")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--refresh", metavar="PROFILE", choices=profiles.names())
    group.add_argument("--strip", metavar="NOTEBOOK", nargs="+", type=Path)
    args = parser.parse_args()
    if args.refresh:
        for p in refresh_copies(args.refresh):
            print(_relative(p))
    else:
        for path in args.strip:
            nb = strip_timings(json.loads(path.read_text()))
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
