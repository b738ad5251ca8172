"""Named seed streams and content keys: the identity of a run, written once.

* **seed streams** (:func:`seed_sequence`, :func:`torch_generator`): one named stream per use of
  a seed; the salts are those of the committed runs, so changing one changes every recorded run;
* **content keys** (:func:`content_key`): a hex prefix of the sha256 of a JSON-able object's
  canonical JSON (sorted keys); the callers' lengths are part of their records' names.

Imports nothing from the package (torch only inside the function that needs it).

Example
-------
>>> content_key({"b": 1, "a": [1, 2]}, 8)
'3813f940'
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["SEED_STREAMS", "seed_sequence", "torch_generator", "content_key"]


#: the named random streams derived from one run's seed: ``("salt", s)`` is
#: ``SeedSequence([seed, s])``; ``("offset", k)`` is a torch generator seeded with ``seed + k``.
#: These values made the committed run records: keep them.
SEED_STREAMS: dict[str, tuple[str, int]] = {
    "gp_masks": ("offset", 10 ** 6),     # the backdrop masks of a GP-sweep network
    "nd_split": ("salt", 7041),          # the non-decomposable experiment's data split
    "nd_masks": ("salt", 991),           # its per-sample masks and minibatch order
    "nd_fidelity": ("salt", 5003),       # its gradient-fidelity draws
}


def _stream(name: str) -> tuple[str, int]:
    if name not in SEED_STREAMS:
        raise ValueError(f"stream must be one of {tuple(SEED_STREAMS)}, got {name!r}")
    return SEED_STREAMS[name]


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """``SeedSequence([seed, salt])`` of a ``("salt", ...)`` stream. Example: ``seed_sequence(0, "nd_split")``."""
    kind, salt = _stream(stream)
    if kind != "salt":
        raise ValueError(f"stream {stream!r} is a torch generator stream: use torch_generator")
    return np.random.SeedSequence([int(seed), salt])


def torch_generator(seed: int, stream: str) -> "Any":
    """A ``torch.Generator`` of the named stream of ``seed``. Example: ``torch_generator(3, "gp_masks")``."""
    import torch

    kind, value = _stream(stream)
    start = int(seed) + value if kind == "offset" else int(seed_sequence(seed, stream).generate_state(1)[0])
    return torch.Generator().manual_seed(start)


def content_key(obj: Any, length: int) -> str:
    """The first ``length`` hex digits of the sha256 of ``json.dumps(obj, sort_keys=True)``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]
