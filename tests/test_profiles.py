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
