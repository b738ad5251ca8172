"""Figures: one function per figure, each returning a matplotlib Figure; ``save`` writes PNG+PDF.

Importing this package makes sure matplotlib's font list holds the fonts it ships (:func:`use_shipped_fonts`).

Sub-modules by topic: ``plots.masks`` (backdrop-demo), ``plots.gp`` (gp-generate-demo),
``plots.training`` (gp-training), ``plots.nondecomposable`` (non-decomposable).
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from ..paths import atomic_path, figures_dir

GP_CMAP = "inferno"



def use_shipped_fonts() -> int:
    """Make sure matplotlib's font list holds the fonts matplotlib ships (DejaVu, STIX, Computer Modern).

    Its maths text (log-scale tick labels such as 10^-3, ``$...$`` labels) asks for the STIX and cm* fonts
    whatever the font family; where the font list lacks them (a font cache written by another installation
    of matplotlib), every figure with maths printed 21 ``findfont: Font family ['STIXGeneral'] not found``
    warnings into the notebooks and fell back to other glyphs. Called when this package is imported;
    returns the number of fonts added (0 where the list was complete). Example: ``use_shipped_fonts()``.
    """
    import matplotlib
    from matplotlib import font_manager

    shipped = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    known = {Path(f.fname).resolve() for f in font_manager.fontManager.ttflist}
    added = 0
    for path in sorted(shipped.glob("*.ttf")):
        if path.resolve() not in known:
            font_manager.fontManager.addfont(str(path))
            added += 1
    clear = getattr(font_manager.fontManager._findfont_cached, "cache_clear", None)
    if added and clear is not None:
        clear()                                                     # earlier look-ups fell back
    return added


use_shipped_fonts()


def save(fig: "plt.Figure", name: str, dpi: int = 150, show: bool = True, show_dpi: int = 150) -> None:
    """Write ``fig`` as ``figures/<name>.png`` (``dpi``) and ``figures/<name>.pdf``, atomically.

    ``name`` is ``<notebook>-<profile>-<what>``, e.g. ``"backdrop-demo-default-masks"``: the notebook
    that makes the figure, then the profile it ran at, so a run at one profile never overwrites the
    figures of another (``tests/test_text_sources.py`` checks every notebook's ``save`` calls).
    With ``show=True`` (default) the figure is displayed once when running under IPython/Jupyter;
    it is then closed (the embedded image is rendered at ``show_dpi``, like the PNG file), so notebooks get exactly one image output per figure whatever the backend
    (papermill and nbval agree). Returns None, so a notebook cell ending in ``save(...)`` has no
    execute result (nbval ignores a trailing ``;``).
    Example: ``save(fig, f"backdrop-demo-{profile}-masks")``.
    """
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"name must be a bare file stem like 'backdrop-demo-masks', got {name!r}")
    for ext in ("png", "pdf"):
        path = figures_dir() / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            kw = {"metadata": {"CreationDate": None}} if ext == "pdf" else {"metadata": {"Software": None}}
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight", **kw)
    if show:
        _display_png(fig, show_dpi)
    plt.close(fig)


def _display_png(fig: "plt.Figure", dpi: int) -> None:
    """Show ``fig`` under IPython as one ``image/png`` output (whatever the backend), rendered at
    ``dpi`` (150 by default, the resolution of figures/*.png, so legend text stays readable)."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # plain Python: nothing to show
        return
    if get_ipython() is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        display(Image(data=buf.getvalue(), format="png"))
