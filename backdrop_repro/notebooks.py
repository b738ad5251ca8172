"""Execute the project's notebooks headlessly with papermill (``backdrop-repro notebooks``)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .paths import atomic_path, check_profile, output_root, results_dir

#: Notebooks in the order ``make reproduce`` runs them (data first, then the experiments).
NOTEBOOKS = ("backdrop-demo", "gp-generate-demo", "gp-training", "non-decomposable")


def notebooks_source_dir() -> Path:
    """The folder holding the source notebooks (``notebooks/`` of the checkout)."""
    env = os.environ.get("BACKDROP_REPRO_NOTEBOOKS")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"
    if not path.is_dir():
        raise FileNotFoundError(f"notebooks folder not found at {path}; set BACKDROP_REPRO_NOTEBOOKS")
    return path


def _relative(path: Path) -> str:
    root = output_root().resolve()
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def run_notebooks(profile: str = "quick", names: Optional[Sequence[str]] = None,
                  out_dir: Optional[Path] = None, parameters: Optional[dict] = None) -> list[Path]:
    """Run notebooks with papermill at ``profile``; write executed copies to ``out_dir``.

    ``out_dir`` defaults to ``results/<profile>/notebooks``. Every notebook receives the
    parameter ``profile`` (plus ``parameters``). Progress bars inside the notebooks are turned
    off (they would be stored as text in the executed copies); one line per notebook reports
    progress instead. Absolute paths in papermill's metadata are made relative, so the
    executed copies can be committed. Returns the executed notebook paths.
    Example: ``run_notebooks("smoke", ["backdrop-demo"])``.
    """
    import papermill as pm

    check_profile(profile)
    names = list(names or NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise ValueError(f"names must be among {NOTEBOOKS}, got {unknown}")
    src = notebooks_source_dir()
    out_dir = Path(out_dir) if out_dir else results_dir(profile) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **(parameters or {})}
    done = []
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        for i, name in enumerate(names, 1):
            out = out_dir / f"{name}.ipynb"
            print(f"[backdrop-repro {i}/{len(names)}] {name} (profile={profile}) -> {_relative(out)}",
                  file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            with atomic_path(out) as tmp:
                pm.execute_notebook(str(src / f"{name}.ipynb"), str(tmp), parameters=params, cwd=str(src),
                                    progress_bar=False, kernel_name="python3")
                nb = json.loads(tmp.read_text())
                meta = nb.get("metadata", {}).get("papermill", {})
                meta.update(input_path=f"notebooks/{name}.ipynb", output_path=_relative(out))
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
