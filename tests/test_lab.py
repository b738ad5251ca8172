"""`make lab`: the pinned JupyterLab starts, serves the source notebooks and starts a kernel.

The server runs with ``make lab``'s own arguments (the Makefile's ``LAB_ARGS``: the repository root,
opening on notebooks/), on 127.0.0.1 with a random token and throw-away Jupyter config/runtime folders;
the first test talks to its REST API (both the sources and the executed copies are served, the landing
page is notebooks/), the second opens an executed notebook in headless Chromium and checks that the
page rendered its cells and a figure. Skipped only where JupyterLab is not
installed (it is pinned in requirements.lock) or, for the browser test, where Chromium is absent.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import stop

from backdrop_repro.notebooks import NOTEBOOKS

pytest.importorskip("jupyterlab")

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 180      # seconds; generous: the test may share 2 busy cores


def lab_args() -> list[str]:
    """``make lab``'s arguments: the Makefile's ``LAB_ARGS``, with ``$(CURDIR)`` the repository root."""
    m = re.search(r"^LAB_ARGS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile defines no LAB_ARGS"
    assert re.search(r"^\t\$\(BIN\)/jupyter lab \$\(LAB_ARGS\)$", (ROOT / "Makefile").read_text(), re.M), \
        "make lab does not start the lab with LAB_ARGS"
    return m.group(1).replace("$(CURDIR)", str(ROOT)).split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(f"{base}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
        return r.status, (json.loads(text) if text else None)


@pytest.fixture
def lab(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_PLATFORM_DIRS": "1"}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                             f"--IdentityProvider.token={token}", *lab_args()]
                            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),   # CI containers
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                if _api(base, token, "/api/status")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {START_TIMEOUT} s:\n"
                            f"{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        stop(proc)
        log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _ask_kernel(base: str, token: str, kernel_id: str, code: str, timeout: float) -> dict:
    """Over the kernel's websocket (as the lab's front end does): a kernel_info_request, then an
    execute_request of ``code``; returns the execute_reply's content."""
    import asyncio
    import uuid

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    session = uuid.uuid4().hex

    def message(msg_type: str, content: dict) -> dict:
        header = {"msg_id": uuid.uuid4().hex, "username": "test", "session": session, "msg_type": msg_type,
                  "version": "5.3"}
        return {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell",
                "buffers": []}

    async def talk() -> dict:
        url = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
        try:
            for msg in (message("kernel_info_request", {}),
                        message("execute_request", {"code": code, "silent": False, "store_history": False,
                                                    "user_expressions": {}, "allow_stdin": False})):
                ws.write_message(json.dumps(msg))
                want = msg["header"]["msg_type"].replace("_request", "_reply")
                while True:
                    raw = await ws.read_message()
                    assert raw is not None, "the kernel's websocket closed"
                    reply = json.loads(raw)
                    if reply["msg_type"] == want and reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                        break
            return reply["content"]
        finally:
            ws.close()

    return asyncio.run(asyncio.wait_for(talk(), timeout))


def test_lab_serves_the_notebooks_and_starts_a_kernel(lab):
    base, token = lab
    with pytest.raises(urllib.error.HTTPError) as err:         # the token is required
        _api(base, "wrong-token", "/api/contents/notebooks")
    assert err.value.code == 403
    status, listing = _api(base, token, "/api/contents/notebooks")
    assert status == 200 and listing["type"] == "directory"
    served = {item["name"] for item in listing["content"]}
    assert {f"{name}.ipynb" for name in NOTEBOOKS} <= served, served
    # the executed copies are reachable from the same server (the README's `make lab`)
    status, executed = _api(base, token, "/api/contents/" + str(Path(BROWSER_NOTEBOOK).parent))
    assert status == 200 and Path(BROWSER_NOTEBOOK).name in {item["name"] for item in executed["content"]}
    # the landing page is the file browser on notebooks/
    req = urllib.request.Request(f"{base}/", headers={"Authorization": f"token {token}"})
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(req, timeout=30)
    assert moved.value.code in (301, 302) and moved.value.headers["Location"].split("?")[0].endswith("/lab/tree/notebooks"), \
        (moved.value.code, moved.value.headers.get("Location"))
    status, kernel = _api(base, token, "/api/kernels", "POST", {"name": "python3"})
    assert status == 201
    try:
        assert kernel["id"] in {k["id"] for k in _api(base, token, "/api/kernels")[1]}
        # the kernel answers and imports the package from this environment
        reply = _ask_kernel(base, token, kernel["id"], "import backdrop_repro, matplotlib", START_TIMEOUT)
        assert reply["status"] == "ok", reply
        assert _api(base, token, f"/api/kernels/{kernel['id']}")[1]["execution_state"] in ("idle", "busy")
    finally:
        assert _api(base, token, f"/api/kernels/{kernel['id']}", "DELETE")[0] == 204


# ------------------------------------------------------------------------------- a real browser
#: Debian's package (``apt-get install -y chromium``; see README, "More")
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
BROWSER_NOTEBOOK = "results/replication/notebooks/gp-training.ipynb"   # an executed copy with figures


def _dump_dom(url: str, profile_dir: Path, budget_ms: int) -> str:
    """The page's DOM after ``budget_ms`` of virtual time in headless Chromium (fresh profile)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
           f"--user-data-dir={profile_dir}", "--window-size=1280,4000", f"--virtual-time-budget={budget_ms}",
           "--dump-dom", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT)
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install -y chromium)")
def test_lab_renders_an_executed_notebook_in_a_browser(lab, tmp_path):
    base, token = lab
    nb = json.loads((ROOT / BROWSER_NOTEBOOK).read_text())
    n_cells = len(nb["cells"])
    url = f"{base}/lab/tree/{BROWSER_NOTEBOOK}?token={token}&reset"
    dom = ""
    for budget in (20000, 60000):                      # a busy machine may need more time for the first render
        dom = _dump_dom(url, tmp_path / f"chromium-{budget}", budget)
        if dom.count("jp-RenderedImage") and dom.count("jp-Cell ") >= min(n_cells, 5):
            break
    assert "jp-Notebook" in dom, dom[-2000:]
    rendered = len(re.findall(r'class="[^"]*\bjp-Cell\b', dom))
    assert rendered >= min(n_cells, 5), f"{rendered} cells rendered of {n_cells}"
    assert "jp-RenderedImage" in dom and ("data:image/png" in dom or "blob:" in dom), "no figure rendered"
    assert "Training 2-scale CNNs" in dom                # the notebook's own title cell
