"""The package's folders and files (``backdrop_repro.paths``): the folders the environment names, made
absolute once and named when wrong; atomic writes and their recognisable temporary files; the folder lock;
orphans of killed writers removed on the next run; available memory and free disk."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from backdrop_repro import cli, machine, paths
from backdrop_repro.experiments import launchers
from backdrop_repro.experiments.gp_sweep import run


# ------------------------------------------------------------------ the folders the environment names
@pytest.mark.parametrize("kind", ["file", "dangling"])
def test_data_env_a_file_or_a_dangling_link_is_named(tmp_path, monkeypatch, capsys, kind):
    target = tmp_path / "cache"
    if kind == "file":
        target.write_text("x")
    else:
        target.symlink_to(tmp_path / "gone")
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(target))
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert f"BACKDROP_REPRO_DATA={target}" in err and ("is a file" if kind == "file" else "does not exist") in err
    assert "File exists" not in err


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


# ------------------------------------------------------------------ atomic writes and their temporary files
def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "r.json"
    paths.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with paths.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temp file left
    assert oct(os.stat(target).st_mode & 0o777) != "0o600"


def test_atomic_path_uses_the_recognisable_prefix(tmp_path):
    with paths.atomic_path(tmp_path / "x.npy") as tmp:
        assert tmp.name.startswith(paths.TMP_PREFIX + "x.npy.") and tmp.parent == tmp_path
        np.save(tmp, np.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_temp_file_names_carry_the_writer_pid(tmp_path):
    with paths.atomic_path(tmp_path / "r.json") as tmp:
        assert tmp.name.startswith(f"{paths.TMP_PREFIX}r.json.pid{os.getpid()}.")
        assert paths.writer_pid(tmp.name) == os.getpid()


# ------------------------------------------------------------------ the folder lock and orphans of killed writers
def test_clean_orphans_rules(tmp_path):
    old, fresh, other = (tmp_path / f"{paths.TMP_PREFIX}old", tmp_path / f"{paths.TMP_PREFIX}fresh",
                         tmp_path / "tmp-user-file")
    for p in (old, fresh, other):
        p.write_text("x")
    past = time.time() - paths.ORPHAN_AGE_S - 60
    os.utime(old, (past, past))
    assert paths.clean_orphans(tmp_path) == [old]          # no lock: only old ones
    assert fresh.exists() and other.exists()
    with pytest.raises(RuntimeError, match="needs folder_lock"):
        paths.clean_orphans(tmp_path, None)
    with paths.folder_lock(tmp_path):
        assert paths.holds_lock(tmp_path)
        with paths.folder_lock(tmp_path):                  # re-entrant in one thread
            pass
        assert paths.clean_orphans(tmp_path, None) == [fresh]
    assert other.exists() and not paths.holds_lock(tmp_path)


def test_folder_lock_excludes_other_threads(tmp_path):
    order = []

    def other():
        with paths.folder_lock(tmp_path):
            order.append("other")

    with paths.folder_lock(tmp_path):
        t = threading.Thread(target=other)
        t.start()
        t.join(0.3)
        order.append("holder")
    t.join(5)
    assert order == ["holder", "other"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


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


# ------------------------------------------------------------------ memory and disk
def test_available_memory_and_free_disk_are_plausible(tmp_path):
    mem = machine.available_memory()
    assert mem is None or 2 ** 20 < mem < 2 ** 60
    assert 0 <= machine.free_disk(tmp_path / "not" / "yet") < 2 ** 70


# ------------------------------------------------------------------ issue 39: a write error names the file or the folder
def _immutable(folder):
    """``folder`` made immutable (``chattr +i``: root cannot write it either), or None where that is not allowed."""
    import shutil
    import subprocess

    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        return None
    return folder


def test_a_write_into_an_immutable_folder_names_the_folder_not_the_temp_file(tmp_path, monkeypatch):
    folder = _immutable(tmp_path / "frozen")
    if folder is None:                  # no chattr here: mkstemp's error as a read-only folder gives it
        folder = tmp_path / "frozen"

        def refuse(dir, prefix, suffix):
            raise PermissionError(13, "Permission denied", f"{dir}/{prefix}abcdefgh{suffix}")
        monkeypatch.setattr(paths.tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(PermissionError) as err:
            paths.write_json(folder / "r.json", {"a": 1})
    finally:
        __import__("subprocess").run(["chattr", "-i", str(folder)], capture_output=True)
    msg = str(err.value)
    assert f"cannot write r.json in the folder {folder}" in msg and paths.TMP_PREFIX not in msg, msg
    assert "\n" not in msg


def test_a_full_disk_names_the_file_written_and_keeps_the_old_one(tmp_path, monkeypatch, capsys):
    import errno

    target = tmp_path / "r.json"
    paths.write_json(target, {"old": 1})
    real = paths.json.dumps

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")     # what write() raises: no file named
    monkeypatch.setattr(paths.json, "dumps", full)
    with pytest.raises(OSError) as err:
        paths.write_json(target, {"new": 1})
    monkeypatch.setattr(paths.json, "dumps", real)
    msg = str(err.value)
    assert err.value.errno == errno.ENOSPC and f"cannot write {target} (No space left on device" in msg, msg
    assert "MB free there" in msg and paths.TMP_PREFIX not in msg
    assert json.loads(target.read_text()) == {"old": 1} and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    from backdrop_repro.cli import error_line
    assert error_line(err.value).count(str(target)) == 1                     # named once, on one line


def test_an_error_about_another_file_keeps_its_own_name(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        with paths.atomic_path(tmp_path / "r.json") as tmp:
            (tmp_path / "missing.txt").read_text()
    assert err.value.filename == str(tmp_path / "missing.txt")
