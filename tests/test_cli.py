"""The command line (``backdrop_repro.cli``): its sub-commands, and one policy for expected failures: one line
``backdrop-repro <command>: error: ...`` and exit 2 (a file where a folder goes, too little memory, an
unwritable results folder), a traceback only for a bug or with ``--debug``."""
import pytest

from backdrop_repro import cli, paths
from helpers import one_line, one_line_error


def test_parser_has_every_subcommand():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == {"generate", "fetch", "sweep", "nondecomposable", "learnability", "confirm", "notebooks", "reproduce"}


def test_bad_profile_is_rejected_with_accepted_values():
    with pytest.raises(ValueError, match="profile must be one of"):
        paths.results_dir("huge")
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--profile", "huge"])


# ------------------------------------------------------------------ expected failures: one line
def test_generate_out_is_a_file_one_line_before_generating(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))
    target = tmp_path / "file"
    target.write_text("x")
    assert cli.main(["generate", "--profile", "smoke", "--out", str(target)]) == 2
    assert str(target) in one_line_error(capsys, "generate")


def test_generate_read_only_out_one_line(tmp_path, capsys, monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(datasets, "generate", lambda *a, **k: pytest.fail("generated first"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkstemp", denied)
    assert cli.main(["generate", "--profile", "smoke", "--out", str(tmp_path / "ro")]) == 2
    assert f"{tmp_path / 'ro'} is not writable" in one_line_error(capsys, "generate")


@pytest.mark.parametrize("content", ["[1, 2]", "{broken"])
def test_generate_into_folder_with_foreign_meta_json(tmp_path, capsys, content):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "meta.json").write_text(content)
    assert cli.main(["generate", "--profile", "smoke", "--out", str(tmp_path / "ds")]) == 2
    assert str(tmp_path / "ds" / "meta.json") in one_line_error(capsys, "generate")
    assert (tmp_path / "ds" / "meta.json").read_text() == content


def test_generate_folder_holding_another_recipe(tmp_path, capsys):
    out = tmp_path / "ds"
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1", "--seed", "7", "--out", str(out)]) == 2
    assert "holds another dataset" in one_line_error(capsys, "generate")


def test_generate_too_large_is_refused_at_once(capsys):
    assert cli.main(["generate", "--profile", "smoke", "--per-class", "1000000000"]) == 2
    line = one_line_error(capsys, "generate")
    assert "need" in line and "of memory" in line and "--per-class" in line


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), 130), (TypeError("x must be an int"), 2), (IsADirectoryError(21, "Is a directory", "/p"), 2),
    (OSError(5, "Input/output error"), 2), (ConnectionError("cannot reach"), 2), (MemoryError(), 2),
])
def test_main_maps_expected_failures(monkeypatch, capsys, exc, status):
    from backdrop_repro.data import datasets

    def boom(args):
        raise exc

    monkeypatch.setattr(cli, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == status
    if status == 130:
        assert "Traceback" not in capsys.readouterr().err
    else:
        line = one_line_error(capsys, "generate")
        if isinstance(exc, IsADirectoryError):
            assert "/p" in line


def test_a_bug_keeps_its_traceback(monkeypatch):
    from backdrop_repro.data import datasets

    monkeypatch.setattr(cli, "_cmd_generate", lambda args: {}["missing"])
    with pytest.raises(KeyError):
        cli.main(["generate", "--profile", "smoke"])


# ----------------------------------------------------------------- out of memory, --debug, an unwritable results folder
def test_memory_error_without_a_message_says_what_to_do(monkeypatch, capsys):
    from backdrop_repro.data import datasets

    def boom(args):
        raise MemoryError()

    monkeypatch.setattr(cli, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    assert "out of memory" in one_line_error(capsys, "generate")


def test_debug_shows_the_traceback_of_an_expected_failure(monkeypatch, capsys):
    from backdrop_repro.data import datasets

    def boom(args):
        raise ValueError("per_class must be an int")

    monkeypatch.setattr(cli, "_cmd_generate", boom)
    assert cli.main(["generate", "--profile", "smoke"]) == 2
    one_line_error(capsys, "generate")
    for argv in (["--debug", "generate", "--profile", "smoke"], ["generate", "--profile", "smoke", "--debug"]):
        with pytest.raises(ValueError, match="per_class"):
            cli.main(argv)
    monkeypatch.setenv("BACKDROP_REPRO_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["generate", "--profile", "smoke"])


@pytest.mark.parametrize("command", [["sweep", "--profile", "smoke"], ["learnability", "--profile", "smoke"]])
def test_an_unwritable_results_folder_is_refused_before_training(capsys, monkeypatch, command, tmp_path):
    from backdrop_repro.experiments.gp_sweep import cli as scli
    from backdrop_repro.experiments.learnability import cli as lcli

    monkeypatch.setattr(scli, "run_sweep", lambda *a, **k: pytest.fail("trained first"))
    monkeypatch.setattr(lcli, "run_all", lambda *a, **k: pytest.fail("trained first"))
    monkeypatch.setenv("BACKDROP_REPRO_OUTPUT", str(tmp_path))
    (tmp_path / "results").write_text("a file where the results folder goes")   # root can write a 0o555 folder
    assert cli.main(command) == 2
    assert "exists and is not a folder" in one_line(capsys, command[0])
