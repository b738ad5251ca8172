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


def survivors(pids, wait_s: float = 15.0) -> list:
    """The processes among ``pids`` still alive after up to ``wait_s`` seconds (a zombie nobody reaped counts
    as dead); any survivor is killed before returning, so a failing test leaves none behind."""
    import os
    import time
    from pathlib import Path

    def gone(pid: int) -> bool:
        try:
            return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True

    deadline = time.time() + wait_s
    while time.time() < deadline and not all(gone(p) for p in pids):
        time.sleep(0.2)
    alive = [p for p in pids if not gone(p)]
    for p in alive:
        os.kill(p, 9)
    return alive


def pids_of_a_killed_script(tmp_path, source: str) -> list:
    """Run ``source`` as a script that prints some process ids and then SIGKILLs itself; check it died of
    that signal and return the ids it printed (the children to look for with :func:`survivors`)."""
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(source)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    return [int(p) for p in proc.stdout.split()]


def sigint_as_a_terminal_gives_it() -> None:
    """``preexec_fn`` of a child a test will Ctrl-C: SIGINT back to its default, whatever the harness did (a shell
    starts background jobs with SIGINT ignored, and a child inherits that; Python then never raises
    KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(proc) -> None:
    """Terminate a server a test started, then kill it if it has not ended within 30 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
