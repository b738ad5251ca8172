"""The optimiser settings are declared once (profiles.OptimSection) and checked once, when a profile is built."""
import re
from dataclasses import asdict, replace

import numpy as np
import pytest

from backdrop_repro import profiles
from backdrop_repro.experiments.gp_sweep.plan import plan_grid
from backdrop_repro.experiments.learnability.plan import plan_map
from backdrop_repro.experiments.nondecomposable import get_config
from backdrop_repro.profiles import OPTIMIZERS, OptimSection
from backdrop_repro.train import TrainConfig

BAD = [({"optimizer": "rmsprop"}, f"optimizer must be one of {OPTIMIZERS}, got 'rmsprop'"),
       ({"lr": -1}, "lr must be a real > 0, got -1"), ({"lr": True}, "lr must be a real > 0, got True"),
       ({"weight_decay": -0.1}, "weight_decay must be a real >= 0, got -0.1"),
       ({"momentum": 1.0}, "momentum must be a real in [0, 1), got 1.0")]


@pytest.mark.parametrize("kw,message", BAD)
def test_a_bad_optimiser_setting_fails_when_the_profile_is_built_in_one_line(kw, message):
    p = profiles.get("smoke")
    builds = [lambda: OptimSection(**kw),
              lambda: replace(p.sweep, optim=replace(p.sweep.optim, **kw)),
              lambda: replace(p.nondecomposable, optim=replace(p.nondecomposable.optim, **kw)),
              lambda: replace(p.learnability, optim=replace(p.learnability.optim, **kw)),
              lambda: TrainConfig(**kw),                      # the same check, not a second one
              lambda: get_config("smoke", **kw)]
    for build in builds:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$") as err:
            build()
        assert "\n" not in str(err.value)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    o = OptimSection(optimizer=np.str_("sgd"), lr=np.float32(0.5), weight_decay=np.int64(0), momentum=np.float64(0.5))
    assert asdict(o) == {"optimizer": "sgd", "lr": 0.5, "weight_decay": 0.0, "momentum": 0.5}
    assert all(type(v) in (str, float) for v in asdict(o).values())
    assert TrainConfig(lr=np.float64(0.01)).lr == 0.01 and type(TrainConfig(lr=np.float64(0.01)).lr) is float


def test_other_section_fields_are_checked_too():
    p = profiles.get("smoke")
    with pytest.raises(ValueError, match="^optim must be an OptimSection"):
        replace(p.sweep, optim={"lr": 0.1})
    with pytest.raises(ValueError, match="^spectral_lr must be a real > 0, got 0$"):
        replace(p.learnability, spectral_lr=0)


def test_every_training_section_reads_its_one_optimiser_section():
    for name in profiles.names():
        p = profiles.get(name)
        sections = [p.sweep, p.nondecomposable] + ([p.learnability] if p.learnability else [])
        for s in sections:
            assert isinstance(s.optim, OptimSection)
            assert (s.optimizer, s.lr, s.weight_decay, s.momentum) == tuple(asdict(s.optim).values())
    smoke = profiles.get("smoke")
    train = plan_grid("smoke", configs=["none"], seeds=[0])[0].train_config()
    assert {k: getattr(train, k) for k in asdict(smoke.sweep.optim)} == asdict(smoke.sweep.optim)
    cnn = next(s for s in plan_map("smoke") if s.model == "cnn").train_config()
    assert {k: getattr(cnn, k) for k in asdict(smoke.learnability.optim)} == asdict(smoke.learnability.optim)
    # the non-decomposable experiment's SGD is plain SGD (momentum 0), said by its section, not by its code
    assert smoke.nondecomposable.momentum == 0.0 and "momentum" not in get_config("smoke").to_dict()
    assert get_config("smoke", momentum=0.5).to_dict()["momentum"] == 0.5


# --------------------------------------------------------------------------------------------
# a resolved Profile below the front doors
# --------------------------------------------------------------------------------------------
def test_every_shipped_profile_survives_json_and_is_shipped():
    import json

    for name in profiles.names():
        p = profiles.get(name)
        assert profiles.from_dict(json.dumps(p.to_dict())) == p == profiles.from_dict(p.to_dict())
        assert profiles.shipped(p)
    odd = replace(profiles.get("smoke"), description="changed")
    assert not profiles.shipped(odd)
    with pytest.raises(ValueError, match="describes profile 'smoke', not 'default'"):
        profiles.resolve("default", json.dumps(odd.to_dict()))


def test_keys_and_recipes_need_no_table(monkeypatch):
    """Below the front door nothing looks the profile up again: keys are computed from the object."""
    p = replace(profiles.get("smoke"), name="unregistered")           # in no table
    specs = plan_grid(p, seeds=[0])
    monkeypatch.setattr(profiles, "get", lambda *a: pytest.fail("looked up again"))
    monkeypatch.setattr(profiles, "check", lambda *a: pytest.fail("looked up again"))
    assert len({s.key for s in specs}) == len(specs) and all(s.key == s.key for s in specs)


def test_a_profile_registered_at_run_time_trains_collects_and_executes_its_notebook(tmp_path, monkeypatch):
    """`profiles.register` in this process only: worker processes and the notebook kernel have their own
    (shipped) table; the profile travels as an object (workers) and as ``profile_spec`` (the kernel)."""
    import json

    from backdrop_repro.experiments.gp_sweep import report as gp_report
    from backdrop_repro.experiments.gp_sweep.run import run_sweep
    from backdrop_repro.notebooks import run_notebooks

    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    smoke = profiles.get("smoke")
    tiny = replace(smoke, name="runtime-tiny", description="a profile registered at run time (test)",
                   data=replace(smoke.data, per_class=4, val_per_class=4, test_per_class=8),
                   sweep=replace(smoke.sweep, epochs=2, eval_every=1, configs=("none", "fine"), data_sizes=(),
                                 robustness_method=None, jobs=2))
    profiles.register(tiny)
    try:
        sweep = run_sweep("runtime-tiny", progress=False)                 # 2 spawned workers, no table entry there
        assert sweep["n_runs"] == sweep["n_planned"] == 4 and sweep["profile"] == "runtime-tiny"
        assert gp_report.write_tables(tiny)["n_runs"] == 4                # collect: the records on disk
        [out] = run_notebooks("runtime-tiny", ["gp-training"], out_dir=tmp_path / "nb")
        nb = json.loads(out.read_text())
        params = nb["metadata"]["papermill"]["parameters"]
        assert params["profile"] == "runtime-tiny" and profiles.from_dict(params["profile_spec"]) == tiny
        text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
        assert "profile runtime-tiny: a profile registered at run time (test)" in text
        assert "4/4 runs" in text
    finally:
        profiles.PROFILES.pop("runtime-tiny", None)
