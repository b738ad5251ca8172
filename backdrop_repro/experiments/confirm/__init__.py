"""The pre-registered confirmatory study of the fine-mask half of the paper's claim (profile ``confirm``).

Does a fine backdrop mask help the 2-scale CNN learn small features where it learns them only
partly? Two tasks from the learnability study's edge (the small-scale edge task, 2.375 vs 2.875 px
at 25 training images per class, and the two-scale 4-class task at 100 per class), each training
no backdrop, ``fine 0.3`` and the authors' ``demo: fine 0.3 + coarse 0.95`` on fresh seeds and a
fresh test set; four paired comparisons, Holm over the four, the package's claim grammar.

* :mod:`.plan`: the design (from the profile), its pre-registration file and hash, the runs;
* :mod:`.run`: trains the runs (keyed, resumable, 2 at a time) after checking the pre-registration;
* :mod:`.report`: reads the records only, refuses records of another design, writes the verdict;
* :mod:`.cli`: ``backdrop-repro confirm``.
"""
from .plan import ConfirmSpec, design, plan_runs, preregistration_path, preregistration_hash

__all__ = ["ConfirmSpec", "design", "plan_runs", "preregistration_path", "preregistration_hash"]
