"""Zenodo route (``data/zenodo.py``, with its unpickler ``data/safe_pickle.py``): pooch download from a local
http.server, restricted unpickling, conversion; a mirror's wrong content named with its variable, the sizes a
zip declares checked against free space, a damaged member one line, partial downloads removed, and the
``fetch`` arguments and the mirror setting checked before any download.

No test touches the internet: every download comes from a server on 127.0.0.1 started here,
serving zips built here in the authors' layout.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import shutil
import socket
import struct
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from backdrop_repro import cli, paths
from backdrop_repro.data import safe_pickle, zenodo
from helpers import one_line_error

NAMES = {0: "9.5-80", 1: "10-80", 2: "9.5-140", 3: "10-140"}
MEMBER = "gp-crosses/GP_9.5-10+80-140.gp"


@dataclasses.dataclass(frozen=True)
class TinyRecipe:
    """The parts of datasets.Recipe the Zenodo loader reads, at 16x16 (the paper's classes)."""

    size: int = 16
    scales: tuple = ((9.5, 10.0), (80.0, 140.0))
    power: tuple = (0.75, 1.25)

    @property
    def class_names(self) -> dict[int, str]:
        return dict(NAMES)


TINY = TinyRecipe()


# ------------------------------------------------------------------------------------ helpers
def authors_pickle(images, labels, names=NAMES, protocol: int = 3) -> bytes:
    """Pickle ``[[[image, label], ...], {label: name}]`` as the authors did (numpy 1.x names)."""
    data = pickle.dumps([[[im, int(lb)] for im, lb in zip(images, labels)], dict(names)], protocol=protocol)
    # numpy >= 2 writes numpy._core; a 2018 pickle names numpy.core (GLOBAL opcode: no length prefix)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n") if protocol <= 3 else data


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def tiny_data(n_per_class: int = 2, size: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(4), n_per_class)          # one sample of each class in turn
    images = rng.standard_normal((len(labels), size, size)).astype(np.float32)
    return images, labels


class Server:
    """http.server on 127.0.0.1 (port 0) serving ``files``; ``modes[name]`` selects a failure:
    'ok', 'corrupt' (one byte flipped), 'truncate' (full Content-Length, half the body, then the
    connection closes), 'short' (a Content-Length and body of half the file)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name not in server.files:
                    self.send_error(404)
                    return
                data, mode = server.files[name], server.modes.get(name, "ok")
                if mode == "corrupt":
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                body = data[: len(data) // 2] if mode in ("truncate", "short") else data
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) if mode == "truncate" else len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if mode == "truncate":
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    monkeypatch.delenv(zenodo.URL_ENV, raising=False)
    monkeypatch.setattr(zenodo, "RETRIES", 0)


def cache_files() -> list[str]:
    """Every file in the Zenodo cache (relative names), temporary ones included."""
    root = zenodo.cache_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def serve_dataset(server: Server, images, labels, names=NAMES, member=MEMBER, protocol=3) -> dict:
    data = make_zip({member: authors_pickle(images, labels, names, protocol)})
    server.files["dataset.zip"] = data
    return {"dataset.zip": md5(data)}


# ------------------------------------------------------------------------------------ download
def test_roundtrip_paper_recipe_bit_exact_then_cached(server):
    """The default recipe (datasets.PAPER, 1024², 4 classes): bit-exact data, one request ever."""
    from backdrop_repro.data import datasets

    images, labels = tiny_data(n_per_class=1, size=datasets.PAPER.size, seed=1)
    hashes = serve_dataset(server, images, labels)
    assert not zenodo.paper_dataset_cached(hashes)

    ds = zenodo.fetch_paper_dataset(progress=False, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip"]
    assert ds.images.dtype == np.float32 and ds.images.shape == images.shape
    assert np.asarray(ds.images).tobytes() == images.tobytes()          # bit for bit
    np.testing.assert_array_equal(ds.labels, labels)
    assert {int(k): v for k, v in ds.class_names.items()} == NAMES
    x, y = ds[2]
    assert tuple(x.shape) == (1, 1024, 1024) and y == 2
    assert isinstance(ds.images, np.memmap)
    assert ds.meta["source"] == "zenodo" and ds.meta["md5"] == hashes["dataset.zip"]
    assert ds.recipe == datasets.PAPER.replace(per_class=1)
    assert zenodo.paper_dataset_cached(hashes)
    assert not any(f.endswith(".gp") for f in cache_files())           # extracted pickle removed

    again = zenodo.fetch_paper_dataset(progress=False, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip"]                           # memory map, no request
    assert np.asarray(again.images).tobytes() == images.tobytes()


def test_cached_zip_reused_and_damaged_zip_replaced(server):
    images, labels = tiny_data()
    hashes = serve_dataset(server, images, labels)
    zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    converted = zenodo._paper_dir(hashes)

    import shutil
    shutil.rmtree(converted)                        # conversion gone, verified zip still cached
    ds = zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip"]
    assert np.asarray(ds.images).tobytes() == images.tobytes()

    raw = bytearray((converted / "images.npy").read_bytes())
    raw[-1] ^= 0xFF                                   # damaged conversion: rebuilt from the zip
    (converted / "images.npy").write_bytes(bytes(raw))
    ds = zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip"]
    assert np.asarray(ds.images).tobytes() == images.tobytes()

    shutil.rmtree(converted)
    zpath = zenodo.cache_dir() / "dataset.zip"
    raw = bytearray(zpath.read_bytes())
    raw[50] ^= 0xFF                                   # bit rot in the cache: pooch re-downloads
    zpath.write_bytes(bytes(raw))
    ds = zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip", "dataset.zip"]
    assert np.asarray(ds.images).tobytes() == images.tobytes()


def test_corrupted_download_hash_error_and_nothing_kept(server):
    images, labels = tiny_data()
    hashes = serve_dataset(server, images, labels)
    server.modes["dataset.zip"] = "corrupt"
    with pytest.raises(ValueError) as err:
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    msg = str(err.value)
    assert "dataset.zip" in msg and hashes["dataset.zip"].split(":")[1] in msg
    assert cache_files() == []
    assert not zenodo.paper_dataset_cached(hashes)


@pytest.mark.parametrize("mode", ["truncate", "short"])
def test_partial_transfer_leaves_nothing_trusted(server, mode):
    images, labels = tiny_data()
    hashes = serve_dataset(server, images, labels)
    server.modes["dataset.zip"] = mode
    expected = ConnectionError if mode == "truncate" else ValueError   # short: hash mismatch
    with pytest.raises(expected) as err:
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    if mode == "truncate":
        assert "interrupted" in str(err.value) and "\n" not in str(err.value)
    assert cache_files() == []
    assert not zenodo.paper_dataset_cached(hashes)

    server.modes["dataset.zip"] = "ok"              # a later call downloads again and succeeds
    ds = zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert server.requests == ["dataset.zip", "dataset.zip"]
    assert np.asarray(ds.images).tobytes() == images.tobytes()


def test_offline_error_is_one_line_and_suggests_generate(monkeypatch, capsys):
    with socket.socket() as s:                       # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(ConnectionError) as err:
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, url=url)
    msg = str(err.value)
    assert zenodo.OFFLINE_COMMAND in msg and "same recipe, not the same pixels" in msg and "\n" not in msg
    with pytest.raises(ConnectionError, match=zenodo.OFFLINE_COMMAND):
        zenodo.fetch_samples(10, progress=False, url=url)

    from backdrop_repro import cli, profiles
    from backdrop_repro.cli import build_parser, main
    from backdrop_repro.data import datasets

    # the hint's command is one the CLI accepts, and it asks for the paper's recipe
    prog, *argv = zenodo.OFFLINE_COMMAND.split()
    args = build_parser().parse_args(argv)
    assert prog == "backdrop-repro" and args.func is cli._cmd_generate
    assert (args.profile, args.method) == ("paper", "faithful")
    assert datasets.split_recipe(profiles.get(args.profile), args.split).replace(method=args.method) == datasets.PAPER

    monkeypatch.setenv(zenodo.URL_ENV, url)
    assert main(["fetch", "dataset", "--no-progress"]) == 2
    err_lines = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err_lines) == 1 and zenodo.OFFLINE_COMMAND in err_lines[0]
    assert cache_files() == []


def test_missing_file_on_mirror_is_file_not_found(server):
    with pytest.raises(FileNotFoundError, match="404"):
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes={"dataset.zip": md5(b"x")},
                                   url=server.url)


# ------------------------------------------------------------------------------------ zip layout
def test_zip_without_expected_member(server):
    data = make_zip({"gp-crosses/README.txt": b"nothing here"})
    server.files["dataset.zip"] = data
    with pytest.raises(ValueError) as err:
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes={"dataset.zip": md5(data)},
                                   url=server.url)
    assert "GP_9.5-10+80-140.gp" in str(err.value) and "README.txt" in str(err.value)


def test_file_that_is_not_a_zip(server):
    data = b"this is not a zip file" * 10
    server.files["dataset.zip"] = data
    with pytest.raises(ValueError, match="not a valid zip"):
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes={"dataset.zip": md5(data)},
                                   url=server.url)


def test_member_found_at_any_folder_depth(server):
    images, labels = tiny_data(n_per_class=1)
    hashes = serve_dataset(server, images, labels, member="GP_9.5-10+80-140.gp", protocol=5)
    ds = zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert np.asarray(ds.images).tobytes() == images.tobytes()


# ------------------------------------------------------------------------------------ safe loading
class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_malicious_pickle_refused_without_side_effect(server, tmp_path):
    marker = tmp_path / "pwned"
    images, labels = tiny_data(n_per_class=1)
    payload = pickle.dumps([[[images[0], 0], _System(f"touch {marker}")], dict(NAMES)], protocol=3)
    data = make_zip({MEMBER: payload})
    server.files["dataset.zip"] = data
    hashes = {"dataset.zip": md5(data)}
    with pytest.raises(safe_pickle.UnsafePickleError) as err:
        zenodo.fetch_paper_dataset(progress=False, recipe=TINY, hashes=hashes, url=server.url)
    assert "system" in str(err.value) and "nothing was executed" in str(err.value)
    assert not marker.exists()
    assert not (zenodo._paper_dir(hashes) / "meta.json").exists()
    assert not any(f.endswith(".gp") for f in cache_files())

    pickle.loads(payload)                # control: the payload is live with a plain unpickler
    assert marker.exists()


def _load(data: bytes):
    return safe_pickle.RestrictedUnpickler(io.BytesIO(data), source="t").load()


@pytest.mark.parametrize("protocol", range(6))
def test_restricted_unpickler_reads_every_protocol(protocol):
    images, labels = tiny_data(n_per_class=1)
    pairs, names = _load(authors_pickle(images, labels, protocol=protocol))
    assert names == NAMES
    for (im, lb), ref, rlb in zip(pairs, images, labels):
        assert type(im) is np.ndarray and im.dtype == np.float32 and im.tobytes() == ref.tobytes()
        assert lb == rlb and type(lb) is int


def test_restricted_unpickler_reads_python2_numpy_pickle():
    """A 2018 file may come from Python 2: str opcodes for the raw bytes, ints for bools."""
    import struct

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)       # bytes >= 0x80 test the latin1 path
    raw = arr.tobytes()
    data = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
            b"(K\x01K\x02K\x03\x86cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R"
            b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
            + struct.pack("<i", len(raw)) + raw + b"tb.")
    out = _load(data)
    assert type(out) is np.ndarray and out.dtype == np.float32 and out.tobytes() == raw


@pytest.mark.parametrize("obj", [
    TINY,                                                    # any class instance
    np.array([1, "x"], dtype=object),                        # object arrays hold pointers
    np.float32(1.5),                                         # numpy scalars are not needed
    np.arange(3).view(np.recarray),                          # ndarray subclasses
    {"f": eval},                                             # builtins
    [np.dtype("f4"), np.dtype([("a", "f4")])],               # structured dtypes
])
def test_restricted_unpickler_refuses_other_objects(obj):
    for protocol in (2, 3, 5):
        data = pickle.dumps(obj, protocol=protocol)
        assert pickle.loads(data) is not None           # control: a plain unpickler accepts it
        with pytest.raises(safe_pickle.UnsafePickleError):
            _load(data)


def test_restricted_unpickler_checks_dtype_and_array_states():
    good = pickle.dumps(np.arange(4, dtype=np.float32), protocol=3)
    assert _load(good).tolist() == [0.0, 1.0, 2.0, 3.0]
    # dtype state claiming the object/refcount flag (would let raw bytes act as pointers)
    flags = good.replace(b"K\x00tq\x0cb", b"K\x01tq\x0cb")
    assert flags != good
    with pytest.raises(safe_pickle.UnsafePickleError, match="dtype state"):
        _load(flags)
    # array state whose buffer is shorter than shape x itemsize
    short = good.replace(b"C\x10" + np.arange(4, dtype=np.float32).tobytes(),
                         b"C\x0c" + np.arange(3, dtype=np.float32).tobytes())
    assert short != good
    with pytest.raises(safe_pickle.UnsafePickleError, match="array state"):
        _load(short)
    # numpy.ndarray used as a constructor (NEWOBJ) instead of through _reconstruct
    newobj = b"\x80\x02cnumpy\nndarray\nK\x02\x85\x81."
    with pytest.raises((safe_pickle.UnsafePickleError, TypeError)):
        _load(newobj)


def test_layout_and_class_checks():
    images, labels = tiny_data()
    ok = [[[im, int(lb)] for im, lb in zip(images, labels)], dict(NAMES)]
    out_images, out_labels, names = safe_pickle.parse_authors_dataset(ok, TINY)
    assert out_images.tobytes() == images.tobytes() and out_labels.tolist() == labels.tolist()
    # names written with floats are the same classes
    assert safe_pickle.parse_authors_dataset([ok[0], {0: "9.5-80.0", 1: "10.0-80", 2: "9.5-140", 3: "10-140"}], TINY)
    bad = {
        "names": [ok[0], {0: "9.5-80", 1: "10-80", 2: "9.5-140", 3: "10-200"}],
        "swapped names": [ok[0], {0: "10-80", 1: "9.5-80", 2: "9.5-140", 3: "10-140"}],
        "label": [ok[0] + [[images[0], 7]], dict(NAMES)],
        "float64": [[[im.astype(np.float64), lb] for im, lb in ok[0]], dict(NAMES)],
        "shape": [[[im[:8], lb] for im, lb in ok[0]], dict(NAMES)],
        "unbalanced": [ok[0][:-1], dict(NAMES)],
        "layout": ok[0],
    }
    for what, obj in bad.items():
        with pytest.raises(ValueError):
            safe_pickle.parse_authors_dataset(obj, TINY)
            pytest.fail(what)


# ------------------------------------------------------------------------------------ samples
def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_fetch_samples_ordered_bit_exact_and_cached(server):
    rng = np.random.default_rng(3)
    arrays = {(cl, v): rng.standard_normal((16, 16)) for cl in ("10", "9.5", "80") for v in (1, 2, 10)}
    members = {f"gp-samples/final_size-16_corr-{cl}_v{v}.npy": _npy(a) for (cl, v), a in arrays.items()}
    data = make_zip(members)
    server.files["samples.zip"] = data
    hashes = {"samples.zip": md5(data)}

    xs = zenodo.fetch_samples(10, progress=False, hashes=hashes, url=server.url)
    assert [x.tobytes() for x in xs] == [arrays[("10", v)].tobytes() for v in (1, 2, 10)]
    ys = zenodo.fetch_samples(9.5, progress=False, hashes=hashes, url=server.url)
    assert [y.tobytes() for y in ys] == [arrays[("9.5", v)].tobytes() for v in (1, 2, 10)]
    again = zenodo.fetch_samples(10.0, progress=False, hashes=hashes, url=server.url)
    assert [x.tobytes() for x in again] == [x.tobytes() for x in xs]
    assert server.requests == ["samples.zip"]
    with pytest.raises(ValueError, match="correlation length 60"):
        zenodo.fetch_samples(60, progress=False, hashes=hashes, url=server.url)
    with pytest.raises(ValueError, match="cls"):
        zenodo.fetch_samples(-1, progress=False, hashes=hashes, url=server.url)


def test_cli_fetch_samples(server, monkeypatch, capsys):
    from backdrop_repro.cli import main

    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((16, 16)) for _ in range(2)]
    data = make_zip({f"final_size-16_corr-80_v{v}.npy": _npy(a) for v, a in enumerate(arrays, 1)})
    server.files["samples.zip"] = data
    monkeypatch.setattr(zenodo, "HASHES", {"samples.zip": md5(data)})
    monkeypatch.setenv(zenodo.URL_ENV, server.url)
    assert main(["fetch", "samples", "--cls", "80", "--no-progress"]) == 0
    assert "correlation length 80: 2 samples of shape (16, 16)" in capsys.readouterr().out
    assert main(["fetch", "samples", "--cls", "200", "--no-progress"]) == 2
    assert "no samples of correlation length 200" in capsys.readouterr().err
    assert server.requests == ["samples.zip"]


def test_fetch_samples_refuses_pickled_npy(server):
    data = make_zip({"final_size-16_corr-10_v1.npy": _npy(np.array([{"a": 1}], dtype=object))})
    server.files["samples.zip"] = data
    with pytest.raises(ValueError, match="allow_pickle=False"):
        zenodo.fetch_samples(10, progress=False, hashes={"samples.zip": md5(data)}, url=server.url)


# ------------------------------------------------------------------------------------ registry
def test_registry_defaults_and_overrides(monkeypatch):
    reg = zenodo.make_registry()
    assert reg.registry == zenodo.HASHES
    assert reg.get_url("dataset.zip") == "https://zenodo.org/records/1252464/files/dataset.zip"
    assert Path(reg.abspath) == zenodo.cache_dir()
    monkeypatch.setenv(zenodo.URL_ENV, "http://mirror.example/gp")
    assert zenodo.make_registry().get_url("samples.zip") == "http://mirror.example/gp/samples.zip"
    with pytest.raises(ValueError, match="hashes"):
        zenodo.make_registry({"dataset.zip": "7374717f"})
    with pytest.raises(ValueError, match="retries"):
        zenodo.make_registry(retries=-1)
    assert safe_pickle.pickle_member_name(TINY) == "GP_9.5-10+80-140.gp"


# ----------------------------------------------------- mirrors and zips: wrong content, declared sizes, damaged members
def test_a_mirror_serving_html_names_its_variable(server, monkeypatch):
    images, labels = tiny_data()
    hashes = serve_dataset(server, images, labels)
    server.files["dataset.zip"] = b"<html><body>Not the file you are looking for</body></html>"
    monkeypatch.setenv(zenodo.URL_ENV, server.url)
    with pytest.raises(ValueError, match=f"the mirror set by {zenodo.URL_ENV}={server.url}") as e:
        zenodo.fetch_paper_dataset(progress=False, hashes=hashes, recipe=None)
    assert "dataset.zip" in str(e.value) and hashes["dataset.zip"] in str(e.value)


def _zip_with(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


def test_declared_member_sizes_are_checked_against_free_space(tmp_path, monkeypatch):
    z = tmp_path / "cache" / "big.zip"
    z.parent.mkdir()
    z.write_bytes(_zip_with("a.gp", b"\0" * 100_000))
    monkeypatch.setattr(zenodo, "free_disk", lambda p: 10_000)
    ex = zenodo.ExtractMembers(r"a\.gp$", z.parent / "out")
    with pytest.raises(OSError, match="as the zip declares"):
        ex(str(z), "download")
    assert not (z.parent / "out" / "a.gp").exists()


def test_a_corrupted_member_is_one_line(tmp_path):
    data = bytearray(_zip_with("a.gp", bytes(range(256)) * 400))
    i = data.index(b"a.gp") + 4                   # the start of the member's deflated stream
    data[i:i + 20] = b"\xff" * 20                  # an invalid block: zlib.error, not a CRC mismatch
    z = tmp_path / "bad.zip"
    z.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="member a.gp is damaged"):
        zenodo.ExtractMembers(r"a\.gp$", tmp_path / "out")(str(z), "download")


# ------------------------------------------------------------------------------------ partial downloads
def test_zenodo_download_removes_partial_downloads(tmp_path, monkeypatch):
    """Partial pooch downloads (tmpXXXXXXXX) and our extraction temp files in the Zenodo cache
    are removed when the next download starts (it holds the cache lock)."""
    import io
    import zipfile

    monkeypatch.setenv("BACKDROP_REPRO_DATA", str(tmp_path / "data"))
    root = zenodo.cache_dir()
    partial = root / "tmpab12cd_3"
    with open(partial, "wb") as f:
        f.truncate(1 << 28)
    extract = root / "samples-0123456789ab"
    extract.mkdir()
    half = extract / f"{paths.TMP_PREFIX}final_size-16_corr-10_v1.npy.x.npy"
    half.write_bytes(b"half")
    mine = root / "tmp-notes"                               # not a tempfile name: kept
    mine.write_text("x")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        arr = io.BytesIO()
        np.save(arr, np.ones((4, 4)))
        zf.writestr("final_size-16_corr-10_v1.npy", arr.getvalue())
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "samples.zip").write_bytes(buf.getvalue())
    import hashlib

    hashes = {"samples.zip": "md5:" + hashlib.md5(buf.getvalue()).hexdigest()}
    monkeypatch.setattr("pooch.HTTPDownloader", lambda **kw: (
        lambda url, output, pooch_obj: shutil.copy(tmp_path / "src" / "samples.zip", output)))
    xs = zenodo.fetch_samples(10, progress=False, hashes=hashes, url="http://127.0.0.1:9/")
    assert np.array_equal(xs[0], np.ones((4, 4)))
    assert not partial.exists() and not half.exists() and mine.exists()


# ------------------------------------------------------------------------------ the restricted unpickler: length fields
@pytest.mark.parametrize("opcode", [b"\x8e", b"\x8d", b"\x95", b"\x96"])      # BINBYTES8, BINUNICODE8, FRAME, BYTEARRAY8
def test_a_huge_pickle_length_field_is_a_one_line_error(tmp_path, opcode):
    from backdrop_repro.data.safe_pickle import safe_load_pickle

    path = tmp_path / "GP.gp"
    path.write_bytes(b"\x80\x05" + opcode + struct.pack("<Q", 2 ** 62) + b".")
    with pytest.raises(ValueError, match="length field") as err:       # never a MemoryError with no message
        safe_load_pickle(path, source="dataset.zip:GP.gp")
    assert "dataset.zip:GP.gp" in str(err.value) and "\n" not in str(err.value)


# -------------------------------------------------- fetch arguments and the mirror setting, checked before any download
@pytest.mark.parametrize("argv, says", [
    (["samples", "--cls", "7"], "no samples of correlation length 7"),
    (["samples", "--cls", "80", "--cls", "7"], "no samples of correlation length 7"),
    (["dataset", "--cls", "80"], "--cls applies to `fetch samples` only"),
])
def test_fetch_arguments_are_refused_before_any_download(monkeypatch, capsys, argv, says):
    from backdrop_repro.data import zenodo

    monkeypatch.setattr(zenodo, "_fetch", lambda *a, **k: pytest.fail("downloaded first"))
    assert cli.main(["fetch", *argv, "--no-progress"]) == 2
    line = one_line_error(capsys, "fetch")
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
    line = one_line_error(capsys, "fetch")
    assert "http:// or https://" in line and zenodo.URL_ENV in line and "network" not in line
