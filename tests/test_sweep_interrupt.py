"""A Ctrl-C while the sweep's workers start is the parent's alone: no traceback from any worker."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process group: Linux")
def test_ctrl_c_while_workers_start_prints_no_worker_traceback(tmp_path):
    env = {**os.environ, "BACKDROP_REPRO_OUTPUT": str(tmp_path / "out"), "BACKDROP_REPRO_DATA": str(tmp_path / "data"),
           "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "backdrop_repro.cli", "sweep", "--profile", "smoke", "--jobs", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # the workers are spawned once the datasets are built: wait for the datasets, then for the workers
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "data").rglob("*.npy")):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)          # what a terminal's Ctrl-C does: the whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert err.count("Traceback") == 0, err[-2000:]
