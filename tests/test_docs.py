"""`make docs`: the documentation site builds from the repository alone, with warnings as errors, every
relative link of the built pages resolves offline, and a browser renders its tables and figures.

The build is ``make docs``'s command (``DOCS_BUILD`` below, the Makefile's recipe) into a temporary
folder. Nothing is executed (``nb_execution_mode = "off"``) and nothing is fetched: external links
are not followed, every relative one is checked against the built files (the file, then its anchor).
The browser test opens the built front page and an executed notebook in headless Chromium through the
DevTools protocol and asks the page itself how many tables it has and how many images loaded.
Skipped where Sphinx/MyST-NB are not installed (they are pinned in requirements.lock) or, for the
browser test, where Chromium is absent (Debian: ``apt-get install -y chromium``).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import stop

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

ROOT = Path(__file__).resolve().parent.parent
#: an executed notebook with a verdict table (a Markdown output) and figures
NOTEBOOK_PAGE = "results/replication/notebooks/gp-training.html"
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
TIMEOUT = 180      # seconds; generous: the test may share 2 busy cores


def _make_docs_command(out: Path) -> list[str]:
    """``make docs``'s sphinx-build line, read from the Makefile, aimed at ``out``."""
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no docs target"
    line = next(l.strip() for l in recipe.group(1).splitlines() if "sphinx-build" in l)
    args = line.split()[1:]
    assert args[-1] == "$(DOCS_OUT)/html" and args[-2] == ".", line
    return [sys.executable, "-m", "sphinx", *args[:-1], str(out)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = _make_docs_command(out)
    assert "-W" in cmd                                        # warnings are errors
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"make docs failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    print(f"site built in {time.monotonic() - t0:.1f} s")
    return out


def test_the_site_has_every_page(site):
    assert (site / "index.html").is_file() and "README.html" in (site / "index.html").read_text()
    front = (site / "README.html").read_text()
    assert "backdrop-repro" in front and "<table" in front
    for nb in sorted(ROOT.glob("results/*/notebooks/*.ipynb")):
        page = site / nb.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"no page for {nb.relative_to(ROOT)}"
        profile = nb.parent.parent.name
        assert f"Executed notebooks: {profile}" in front, f"no navigation section for profile {profile}"
    for md in sorted((ROOT / "docs").glob("*.md")):
        assert (site / "docs" / f"{md.stem}.html").is_file(), f"no page for docs/{md.name}"
    api = (site / "docs" / "api.html").read_text()
    for name in ("backdrop_repro.masking.BackdropMask", "backdrop_repro.models.TwoScaleCNN.for_scales",
                 "backdrop_repro.train.train", "backdrop_repro.gp.fields.sample_field",
                 "backdrop_repro.data.recipes.split_recipe"):
        assert f'id="{name}"' in api, f"the API reference documents no {name}"


def test_notebook_pages_render_the_committed_outputs(site):
    page = (site / NOTEBOOK_PAGE).read_text()
    assert "<table" in page, "the verdict table (a Markdown output) was not rendered as a table"
    assert re.search(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', page), "no figure"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and a.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(a[key])


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_every_relative_link_resolves_offline(site):
    parsed: dict[Path, _Links] = {}
    bad = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 20
    for page in pages:
        links = parsed.setdefault(page, _parse(page))
        for link in links.links:
            url = urllib.parse.urlsplit(link)
            if url.scheme or link.startswith("//"):
                continue                                          # external: not fetched
            target = page if not url.path else (page.parent / urllib.parse.unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                bad.append(f"{page.relative_to(site)}: {link} (no file)")
                continue
            if url.fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, _parse(target)).ids
                if urllib.parse.unquote(url.fragment) not in ids:
                    bad.append(f"{page.relative_to(site)}: {link} (no anchor)")
    assert not bad, f"{len(bad)} broken links:\n" + "\n".join(bad[:40])


# ------------------------------------------------------------------------------- a real browser
_PROBE = """new Promise(resolve => {
  const report = () => resolve(JSON.stringify({
    href: location.href,
    tables: document.querySelectorAll('article table').length,
    loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).map(i => i.src),
    broken: [...document.images].filter(i => i.complete && i.naturalWidth === 0).map(i => i.src)}));
  if (document.readyState === 'complete') report(); else window.addEventListener('load', report);
})"""


def _render(url: str, profile_dir: Path) -> dict:
    """What headless Chromium shows of ``url``: tables in the page's article, images loaded and broken."""
    import websocket          # websocket-client, pinned in requirements.lock (a JupyterLab dependency)

    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*",
                             f"--user-data-dir={profile_dir}", "--window-size=1280,2000", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + TIMEOUT
        while port is None:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
            elif not line and proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit {proc.poll()})")
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages and pages[0].get("url", "").startswith("file:"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"Chromium opened no page for {url}: {pages}")
            time.sleep(0.2)
        ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=TIMEOUT)
        try:
            for attempt in range(1, 1000):
                # the first document may still be about:blank (or be replaced while the probe waits): ask again
                ws.send(json.dumps({"id": attempt, "method": "Runtime.evaluate",
                                    "params": {"expression": _PROBE, "awaitPromise": True, "returnByValue": True}}))
                while True:
                    msg = json.loads(ws.recv())
                    if msg.get("id") == attempt:
                        break
                value = msg.get("result", {}).get("result", {})
                shown = json.loads(value["value"]) if value.get("type") == "string" else None
                if shown and shown["href"].startswith("file:"):
                    return shown
                if time.monotonic() > deadline:
                    pytest.fail(f"Chromium did not show {url}: {msg}")
                time.sleep(0.5)
        finally:
            ws.close()
        raise AssertionError("unreachable")
    finally:
        stop(proc)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install -y chromium)")
@pytest.mark.parametrize("page", ["README.html", NOTEBOOK_PAGE])
def test_a_browser_renders_a_table_and_a_figure(site, page, tmp_path):
    shown = _render((site / page).as_uri(), tmp_path / "chromium")
    assert shown["href"].endswith(page), shown["href"]
    assert shown["tables"] >= 1, f"{page}: no table rendered"
    assert shown["loaded"], f"{page}: no figure loaded"
    assert not shown["broken"], f"{page}: images that did not load: {shown['broken'][:5]}"
