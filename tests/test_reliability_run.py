"""Issue 20 (nothing silently wrong, round two) and issue 19 item 3 (the main job's output):
the run side of the package. Every test here failed before its fix."""
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from backdrop_repro import cli, paths
from backdrop_repro.experiments import core, launchers
from backdrop_repro.experiments.gp_sweep import plan, run


def _one_line_error(capsys, command: str, progress_lines: int = 0) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 + progress_lines and lines[-1].startswith(f"backdrop-repro {command}: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def _no_work(monkeypatch):
    """Fail the test if a dataset is built or a run trains."""
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "build_dataset", lambda *a, **k: pytest.fail("a dataset was built first"))
    monkeypatch.setattr(run, "run_one", lambda *a, **k: pytest.fail("a run trained first"))
    monkeypatch.setattr(core, "run_one", lambda *a, **k: pytest.fail("a run trained first"))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------ item 3: --out never overwrites a user's files
def test_generate_out_refuses_a_non_empty_folder_it_did_not_write(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))
    out = tmp_path / "mine"
    out.mkdir()
    np.save(out / "images.npy", np.arange(3.0))
    (out / "labels.npy").write_bytes(b"my labels")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert cli.main(["generate", "--profile", "smoke", "--out", str(out)]) == 2
    line = _one_line_error(capsys, "generate")
    assert str(out) in line and "images.npy" in line and "not empty" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_generate_out_still_accepts_an_empty_or_new_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / f"{paths.TMP_PREFIX}images.npy.pid1.abcdefgh.npy").write_bytes(b"orphan")
    for name in ("empty", "new"):
        assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name / "meta.json").is_file()
    # and a folder it wrote is reused
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(tmp_path / "new")]) == 0


# ------------------------------------------------------------------ item 4: no code runs from a checkpoint
class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_malicious_checkpoint_is_refused_and_never_executed(tmp_path):
    from backdrop_repro.models import TwoScaleCNN
    from backdrop_repro.train import TrainConfig, train

    marker, ckpt = tmp_path / "pwned", tmp_path / "run.pt"
    torch.save({"epoch": 1, "model": _Planted(marker), "optimizer": {}, "generators": [], "history": [],
                "config": {}}, ckpt)
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 4
    with pytest.warns(RuntimeWarning, match="unreadable"):
        out = train(net, (x, y), (x, y), TrainConfig(epochs=1, batch_size=4), checkpoint=ckpt, resume=True,
                    progress=False)
    assert not marker.exists()                       # nothing was executed
    assert [h["epoch"] for h in out["history"]] == [1]


# ------------------------------------------------------------------ item 5: relative folders from the environment
def test_relative_env_folders_are_made_absolute_once_and_passed_to_kernels(tmp_path, monkeypatch):
    import papermill as pm

    from backdrop_repro import notebooks

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", "rel-out")
    monkeypatch.setenv("BACKDROP_REPRO_DATA", "rel-data")
    seen = {}

    def fake_execute(input_path, output_path, parameters, cwd, **kw):
        seen.update({k: os.environ[k] for k in ("BACKDROP_REPRO_OUTPUT", "BACKDROP_REPRO_DATA")}, cwd=cwd)
        nb = json.loads(Path(input_path).read_text())
        Path(output_path).write_text(json.dumps(nb))

    monkeypatch.setattr(pm, "execute_notebook", fake_execute)
    assert cli.main(["notebooks", "--profile", "smoke", "backdrop-demo"]) == 0
    assert seen["BACKDROP_REPRO_OUTPUT"] == str(tmp_path / "rel-out")       # what the kernel inherits
    assert seen["BACKDROP_REPRO_DATA"] == str(tmp_path / "rel-data")
    assert Path(seen["cwd"]) != tmp_path                                    # the kernel runs elsewhere
    assert (tmp_path / "rel-out" / "results" / "smoke" / "notebooks" / "backdrop-demo.ipynb").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                                            # later calls: the same folders
    assert paths.output_root() == tmp_path / "rel-out" and paths.data_dir() == tmp_path / "rel-data"
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", "other")      # the library entry point makes them absolute too
    notebooks.run_notebooks("smoke", ["backdrop-demo"])
    assert seen["BACKDROP_REPRO_OUTPUT"] == str(elsewhere / "other")
    assert (elsewhere / "other" / "results" / "smoke" / "notebooks" / "backdrop-demo.ipynb").is_file()


# ------------------------------------------------------------------ item 6 and issue 19: notebooks
def _notebook(tmp_path, code: list[str]) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# A test notebook\n\n> committed with smoke outputs"},
             {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": 'profile = "smoke"',
              "outputs": [], "execution_count": None}]
    cells += [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None} for c in code]
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i}"
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (src / "backdrop-demo.ipynb").write_text(json.dumps(nb))
    return src


def test_a_failed_notebook_keeps_its_executed_copy_beside_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKDROP_REPRO_NOTEBOOKS", str(_notebook(tmp_path, ["x = 1", "y = x / 0\nprint(y)"])))
    assert cli.main(["notebooks", "--profile", "smoke", "backdrop-demo"]) == 2
    line = _one_line_error(capsys, "notebooks", progress_lines=1)     # "[backdrop-repro 1/1] backdrop-demo ..."
    assert "notebook backdrop-demo failed at cell 3 (`y = x / 0`)" in line and "ZeroDivisionError" in line
    out = paths.results_dir("smoke") / "notebooks"
    failed = out / "backdrop-demo.failed.ipynb"
    assert str(failed.relative_to(paths.output_root())) in line
    nb = json.loads(failed.read_text())
    assert any(o.get("output_type") == "error" and o["ename"] == "ZeroDivisionError"
               for c in nb["cells"] for o in c.get("outputs", []))
    assert not (out / "backdrop-demo.ipynb").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(paths.TMP_PREFIX)]


def test_notebook_runs_print_no_kernel_warnings(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("BACKDROP_REPRO_NOTEBOOKS", str(_notebook(tmp_path, ["print('fine')"])))
    failed = paths.results_dir("smoke") / "notebooks" / "backdrop-demo.failed.ipynb"
    failed.parent.mkdir(parents=True, exist_ok=True)
    failed.write_text("{}")                                     # a stale failure: the success removes it
    from backdrop_repro.notebooks import run_notebooks

    (out,) = run_notebooks("smoke", ["backdrop-demo"])
    err = capfd.readouterr().err
    assert "without encryption" not in err and "KeyboardInterrupt" not in err and "[IPKernelApp]" not in err, err
    assert "fine" in out.read_text() and not failed.exists()


# ------------------------------------------------------------------ item 7: one line, not a traceback
def test_a_full_disk_while_checkpointing_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from backdrop_repro import train as train_mod
    from backdrop_repro.models import TwoScaleCNN

    def full(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1216 vs 1140")

    monkeypatch.setattr(train_mod.torch, "save", full)
    net = TwoScaleCNN(width=4, n_fine=1, n_coarse=1, init_seed=0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 4
    with pytest.raises(train_mod.CheckpointWriteError, match="cannot write the checkpoint .*run.pt") as err:
        train_mod.train(net, (x, y), (x, y), train_mod.TrainConfig(epochs=2, batch_size=4),
                        checkpoint=tmp_path / "run.pt", progress=False)
    assert isinstance(err.value, OSError) and "\n" not in str(err.value) and "disk" in str(err.value)
    assert list(tmp_path.iterdir()) == []                     # no temp file left
    # through the CLI: one line, exit 2
    assert cli.main(["sweep", "--profile", "smoke", "--configs", "none", "--seeds", "0", "--no-studies",
                     "--jobs", "1"]) == 2
    assert "cannot write the checkpoint" in _one_line_error(capsys, "sweep")


@pytest.mark.parametrize("device, says", [("cuda", "no CUDA device"), ("cuda:0", "no CUDA device"),
                                          ("cdua", "not a torch device"), ("gpu", "not a torch device")])
def test_a_device_this_machine_lacks_is_refused_before_any_dataset(monkeypatch, capsys, device, says):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _no_work(monkeypatch)
    assert cli.main(["sweep", "--profile", "smoke", "--device", device]) == 2
    assert says in _one_line_error(capsys, "sweep")
    with pytest.raises(ValueError, match=says):
        run.run_sweep("smoke", device=device, progress=False)


def test_train_refuses_a_missing_device_in_one_line(monkeypatch):
    from backdrop_repro.train import TrainConfig, train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    x, y = torch.randn(4, 1, 16, 16), torch.arange(4) % 4
    with pytest.raises(ValueError, match="no CUDA device"):
        train(torch.nn.Flatten(), (x, y), (x, y), TrainConfig(epochs=1, device="cuda"), progress=False)


@pytest.mark.parametrize("final", [{}, None, {"test_accuracy": None}, "0.5"])
def test_a_record_with_an_empty_or_null_final_is_set_aside_not_crashing_later_sweeps(final, capsys):
    from backdrop_repro.experiments.gp_sweep import report

    spec = plan.plan_grid("smoke", ["none"], [0])[0]
    path = plan.runs_dir("smoke") / f"{spec.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "final": final, "history": []}))
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert plan.read_record(path, spec) is None
    assert not path.exists() and path.with_name(path.name + ".corrupt").exists()
    path.write_text(json.dumps({"key": spec.key, "config": spec.to_dict(), "final": final, "history": []}))
    with pytest.warns(RuntimeWarning):
        report.write_tables("smoke")                  # the collect step of every later sweep
    assert cli.main(["sweep", "--profile", "smoke", "--collect-only"]) == 0
    path.with_name(path.name + ".corrupt").unlink()


@pytest.mark.parametrize("opcode", [b"\x8e", b"\x8d", b"\x95", b"\x96"])      # BINBYTES8, BINUNICODE8, FRAME, BYTEARRAY8
def test_a_huge_pickle_length_field_is_a_one_line_error(tmp_path, opcode):
    from backdrop_repro.data.safe_pickle import safe_load_pickle

    path = tmp_path / "GP.gp"
    path.write_bytes(b"\x80\x05" + opcode + struct.pack("<Q", 2 ** 62) + b".")
    with pytest.raises(ValueError, match="length field") as err:       # never a MemoryError with no message
        safe_load_pickle(path, source="dataset.zip:GP.gp")
    assert "dataset.zip:GP.gp" in str(err.value) and "\n" not in str(err.value)


def test_memory_error_without_a_message_says_what_to_do(monkeypatch, capsys):
    from backdrop_repro.data import datasets

    def boom(args):
        raise MemoryError()

    monkeypatch.setattr(datasets, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    assert "out of memory" in _one_line_error(capsys, "generate")


# ------------------------------------------------------------------ deliver 2: one policy, --debug
def test_debug_shows_the_traceback_of_an_expected_failure(monkeypatch, capsys):
    from backdrop_repro.data import datasets

    def boom(args):
        raise ValueError("per_class must be an int")

    monkeypatch.setattr(datasets, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    _one_line_error(capsys, "generate")
    for argv in (["--debug", "generate", "--profile", "smoke"], ["generate", "--profile", "smoke", "--debug"]):
        with pytest.raises(ValueError, match="per_class"):
            cli.main(argv)
    monkeypatch.setenv("BACKDROP_REPRO_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["generate", "--profile", "smoke"])


# ------------------------------------------------------------------ item 8: inputs checked before any work
def test_seeds_outside_the_profile_are_refused_before_training(monkeypatch, capsys):
    _no_work(monkeypatch)
    assert cli.main(["sweep", "--profile", "smoke", "--seeds", "0", "99"]) == 2
    line = _one_line_error(capsys, "sweep")
    assert "--seeds [99]" in line and "smoke" in line
    with pytest.raises(ValueError, match=r"seeds \[99\]"):
        run.run_sweep("smoke", seeds=[99], progress=False)


@pytest.mark.parametrize("argv, says", [
    (["--collect-only", "--jobs", "2"], "--jobs: not with --collect-only"),
    (["--collect-only", "--fresh"], "--fresh: not with --collect-only"),
    (["--partition", "gpu"], "--partition: only with --launcher submitit"),
    (["--gpus-per-job", "1", "--time-min", "5"], "--gpus-per-job, --time-min: only with --launcher submitit"),
    (["--launcher", "submitit", "--jobs", "2"], "--jobs applies to --launcher local only"),
    (["--jobs", "0"], "--jobs must be an int >= 1"),
])
def test_sweep_flags_that_do_not_apply_are_refused(monkeypatch, capsys, argv, says):
    _no_work(monkeypatch)
    from backdrop_repro.experiments.gp_sweep import cli as sweep_cli

    monkeypatch.setattr(sweep_cli, "write_tables", lambda *a, **k: pytest.fail("tabled first"))
    assert cli.main(["sweep", "--profile", "smoke", *argv]) == 2
    assert says in _one_line_error(capsys, "sweep")


@pytest.mark.parametrize("argv, says", [
    (["samples", "--cls", "7"], "no samples of correlation length 7"),
    (["samples", "--cls", "80", "--cls", "7"], "no samples of correlation length 7"),
    (["dataset", "--cls", "80"], "--cls applies to `fetch samples` only"),
])
def test_fetch_arguments_are_refused_before_any_download(monkeypatch, capsys, argv, says):
    from backdrop_repro.data import zenodo

    monkeypatch.setattr(zenodo, "_fetch", lambda *a, **k: pytest.fail("downloaded first"))
    assert cli.main(["fetch", *argv, "--no-progress"]) == 2
    line = _one_line_error(capsys, "fetch")
    assert says in line
    if "7" in argv:
        assert "9.5, 10, 60, 80, 140, 200" in line
    with pytest.raises(ValueError, match="correlation length 7"):
        zenodo.fetch_samples(7, progress=False)


@pytest.mark.parametrize("url", ["ftp://mirror.example/gp/", "file:///srv/gp/", "mirror.example/gp/"])
def test_a_mirror_with_another_scheme_is_a_setting_error_not_the_network(monkeypatch, capsys, url):
    from backdrop_repro.data import zenodo

    monkeypatch.setenv(zenodo.URL_ENV, url)
    assert cli.main(["fetch", "dataset", "--no-progress"]) == 2
    line = _one_line_error(capsys, "fetch")
    assert "http:// or https://" in line and zenodo.URL_ENV in line and "network" not in line


def test_numpy_scalars_are_accepted_by_the_network_and_the_nondecomposable_config(tmp_path):
    from backdrop_repro.experiments import nondecomposable as nd
    from backdrop_repro.models import TwoScaleCNN

    a = TwoScaleCNN.for_scales(np.int64(256), small_cl=np.float32(9.5), large_cl=np.array([80.0, 140.0]),
                               width=np.int64(4), fine_prob=np.float32(0.5))
    b = TwoScaleCNN.for_scales(256, small_cl=9.5, large_cl=(80.0, 140.0), width=4, fine_prob=0.5)
    assert a.cells == b.cells and a.n_fine == b.n_fine and a.n_coarse == b.n_coarse and a.width == 4
    with pytest.raises(ValueError, match="size must be a power of two"):
        TwoScaleCNN.for_scales(np.int64(100))
    cfg = nd.get_config("smoke", steps=np.int64(2), eval_every=np.int64(1), lr=np.float32(0.01),
                        tau=np.float64(1.0), hidden=np.int64(4), seeds=[np.int64(0)])
    assert type(cfg.lr) is float and type(cfg.steps) is int
    res = nd.run_experiment("smoke", config=cfg, progress=False, write=True)   # hashed and written after the runs
    assert (paths.results_dir("smoke") / f"{res['name']}.json").is_file()


# ------------------------------------------------------------------ item 9: processes and files left behind
_POOL_SCRIPT = textwrap.dedent("""
    import os, signal, time
    from backdrop_repro.experiments.launchers import worker_pool

    if __name__ == "__main__":
        pool = worker_pool(2)
        for f in [pool.submit(time.sleep, 0.5) for _ in range(2)]:
            f.result()
        print(" ".join(str(p) for p in pool._processes), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in state                         # a zombie nobody reaped: dead all the same


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_die_with_their_parent(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(_POOL_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    workers = [int(p) for p in proc.stdout.split()]
    assert len(workers) == 2
    deadline = time.time() + 15
    while time.time() < deadline and not all(_gone(p) for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if not _gone(p)]
    for p in alive:                                       # don't leave them behind if the test fails
        os.kill(p, 9)
    assert not alive


def test_temp_file_names_carry_the_writer_pid(tmp_path):
    with paths.atomic_path(tmp_path / "r.json") as tmp:
        assert tmp.name.startswith(f"{paths.TMP_PREFIX}r.json.pid{os.getpid()}.")
        assert paths.writer_pid(tmp.name) == os.getpid()


def _plant_orphans(profile: str) -> tuple[list[Path], list[Path]]:
    dead, root = _dead_pid(), paths.output_root()
    folders = [root / "figures", root / "results" / profile, root / "results" / profile / "gp_runs",
               root / "results" / profile / "notebooks", paths.data_dir() / "checkpoints" / "gp_sweep"]
    orphans, live = [], []
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
        orphans.append(f / f"{paths.TMP_PREFIX}x.json.pid{dead}.k1ll3d_x.json")
        live.append(f / f"{paths.TMP_PREFIX}y.json.pid{os.getpid()}.wr1t1ng_.json")
    for p in orphans + live:
        p.write_text("half")
    return orphans, live


def test_orphans_of_killed_runs_are_removed_on_the_next_run_everywhere(monkeypatch):
    import papermill as pm

    monkeypatch.setattr(pm, "execute_notebook",
                        lambda i, o, **k: Path(o).write_text(Path(i).read_text()))
    monkeypatch.setattr(launchers.Local, "__call__", lambda *a, **k: {"submitted": 0, "jobs": 0, "failed": []})
    monkeypatch.setattr(run, "write_tables", lambda *a, **k: {})
    from backdrop_repro.notebooks import run_notebooks

    for start in (lambda: run_notebooks("smoke", ["backdrop-demo"]),
                  lambda: run.run_sweep("smoke", progress=False)):
        orphans, live = _plant_orphans("smoke")
        start()
        assert not [p for p in orphans if p.exists()]
        assert all(p.exists() for p in live)             # a live writer's file stays
        for p in live:
            p.unlink()


# ------------------------------------------------------------------ issue 19 item 3: the sweep on a non-TTY
def _fake_runs(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(plan, "find_record", lambda s: None)
    monkeypatch.setattr(core, "load_data", lambda *a, **k: None)
    monkeypatch.setattr(core, "run_one", lambda *a, **k: None)
    return plan.plan_grid("smoke", ["none", "fine"], [0])


def test_on_a_non_tty_the_sweep_prints_a_line_per_run_with_the_time_left(monkeypatch, capsys):
    specs = _fake_runs(monkeypatch)
    launchers.Local(1)(specs, progress=True, desc="GP sweep smoke: grid")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(specs)
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"[GP sweep smoke: grid] {i}/{len(specs)} runs done (")
        assert "so far, ≈ " in line and line.endswith(" left")
    launchers.Local(1)(specs, progress=False)
    assert capsys.readouterr().err == ""


def test_on_a_tty_the_sweep_keeps_its_bar(monkeypatch):
    from tqdm import tqdm

    _fake_runs(monkeypatch)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = launchers.progress_bar(3, "x", True)
    assert isinstance(bar, tqdm)
    bar.close()
