"""Execute the project's notebooks headlessly with papermill (``backdrop-repro notebooks``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from .io import check_profile, output_root, results_dir

#: Notebooks in the order ``make reproduce`` runs them (data first, then the experiments).
NOTEBOOKS = ("backdrop-demo", "gp-generate-demo", "gp-training", "non-decomposable")


def notebooks_source_dir() -> Path:
    """The folder holding the source notebooks (``notebooks/`` of the checkout)."""
    env = os.environ.get("BACKDROP_REPRO_NOTEBOOKS")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"
    if not path.is_dir():
        raise FileNotFoundError(f"notebooks folder not found at {path}; set BACKDROP_REPRO_NOTEBOOKS")
    return path


def run_notebooks(profile: str = "quick", names: Optional[Sequence[str]] = None,
                  out_dir: Optional[Path] = None, parameters: Optional[dict] = None) -> list[Path]:
    """Run notebooks with papermill at ``profile``; write executed copies to ``out_dir``.

    ``out_dir`` defaults to ``results/<profile>/notebooks``. Every notebook receives the
    parameter ``profile`` (plus ``parameters``). Returns the executed notebook paths.
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
    done = []
    for name in names:
        out = out_dir / f"{name}.ipynb"
        tmp = out.with_name(f".{name}.partial.ipynb")
        params = {"profile": profile, **(parameters or {})}
        print(f"[backdrop-repro] executing {name} (profile={profile}) -> {out.relative_to(output_root()) if out.is_relative_to(output_root()) else out}", flush=True)
        pm.execute_notebook(str(src / f"{name}.ipynb"), str(tmp), parameters=params, cwd=str(src),
                            progress_bar=False, kernel_name="python3")
        os.replace(tmp, out)
        done.append(out)
    return done
