"""The terms the notebooks and the README use, each defined once (``tests/test_readers.py`` checks
that every notebook defines a term at or before the cell where it first uses it, and that the
README's glossary holds every definition)."""
from __future__ import annotations

import re

__all__ = ["TERMS", "used_terms", "terms_paragraph"]

#: term -> one-sentence definition (markdown)
TERMS: dict[str, str] = {
    "shrunk task": "the paper's task shrunk by 4 in every length: 256² images, small lengths 2.375/2.5 px, large "
                   "20/35 px (paper: 1024², 9.5/10 and 80/140 px); it keeps the blobs per image, the length ratios "
                   "and the 32×32/4×4 mask grids at 1/16 of the cost",
    "MDE": "minimum detectable effect: the smallest true gain the design detects with 80 % power (after the Holm "
           "correction where one applies)",
    "Holm": "Holm's correction: a step-down adjustment of the p-values of a family of comparisons that keeps the "
            "chance of any false claim among them at 5 %",
    "TOST": "two one-sided tests: the equivalence test that the true difference lies inside the relevance margin "
            "±0.03; a small TOST p means no change as large as the margin",
    "stem": "the network's first convolution (5×5 kernel, stride 2), before the 2×2 stride-2 convolutions",
    "oracle": "the likelihood classifier (`gp/oracle.py`): it scores each image by the Gaussian likelihood of each "
              "class's spectrum; exact, the best any classifier can do, for periodic FFT fields, approximate otherwise",
    "exchangeable": "a random mask whose cells are exchangeable has the same distribution after any permutation of "
                    "its cells, so every cell is kept with the same probability and gets the same average factor",
}


def used_terms(text: str) -> list[str]:
    """The glossary terms that occur in ``text`` (whole words), in :data:`TERMS` order.
    Example: ``used_terms("the MDE after Holm") == ["MDE", "Holm"]``."""
    return [t for t in TERMS if re.search(r"\b" + re.escape(t) + r"\b", text)]


def terms_paragraph(terms: list[str]) -> str:
    """A markdown paragraph defining ``terms`` (each must be in :data:`TERMS`).
    Example: ``terms_paragraph(["MDE"]).startswith("**Terms.**")``."""
    unknown = [t for t in terms if t not in TERMS]
    if unknown:
        raise ValueError(f"terms must be keys of glossary.TERMS ({', '.join(TERMS)}), got {unknown}")
    return "**Terms.** " + " ".join(f"*{t}*: {TERMS[t]}." for t in terms)
