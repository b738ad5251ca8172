"""Where can backdrop help? The learnability map of the GP task and the backdrop comparison along its edge.

Data flow: :mod:`.plan` (``LearnSpec``, its key, the map, the edge chosen from the map's records,
the two-scale task) → :mod:`.run` (trains each run through the run core, :mod:`..core`, and a launcher,
:mod:`..launchers`, and writes its keyed record ``results/<profile>/learnability/<key>.json``) →
:mod:`.report` (reads records only: per-cell summaries, paired comparisons with Holm and power, Findings).
:mod:`backdrop_repro.spectral` is the spectral-energy reference network; :mod:`.cli` the ``learnability`` command.
"""
from .plan import (MODELS, PARTS, LearnSpec, find_record, map_cells, plan_edge, plan_map, plan_part, plan_twoscale,
                   records_dir, section, select_edge, select_twoscale, tasks, twoscale_sizes)
from .report import (compare_cell, load_summary, summarize_edge, summarize_map, summarize_twoscale, twoscale_blocks,
                     write_summary)
from .run import build_model, energy_statistic, run_all, run_one, run_part
from ...spectral import SpectralEnergyNet

__all__ = ["MODELS", "PARTS", "LearnSpec", "find_record", "map_cells", "plan_edge", "plan_map", "plan_part",
           "plan_twoscale", "records_dir", "section", "select_edge", "select_twoscale", "tasks",
           "compare_cell", "load_summary", "summarize_edge", "summarize_map",
           "summarize_twoscale", "twoscale_blocks", "twoscale_sizes", "write_summary", "build_model", "energy_statistic",
           "run_all", "run_one", "run_part", "SpectralEnergyNet"]
