"""Checks shared by several test files: an expected failure is one line on stderr, never a traceback."""


def one_line_error(capsys, command: str, progress_lines: int = 0) -> str:
    """The one line ``backdrop-repro <command>: error: ...`` on stderr (after ``progress_lines`` progress lines)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 + progress_lines and lines[-1].startswith(f"backdrop-repro {command}: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def one_line(capsys, command):
    """The one line on stderr, whatever its prefix (``command`` names the sub-command for the reader)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]
