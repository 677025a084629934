"""`make run`'s bootstrap admin key: a 0600 file, the terminal at most, never the log stream."""

import io
import stat
from pathlib import Path

import pytest

from starter.dev.bootstrap_key import KEY_FILE, announce, write_key_file

KEY = "tsk_abc123.s3cr3t-half-of-the-key"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write_key_file(tmp_path, KEY)

    assert path == tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == KEY
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_a_second_bootstrap_replaces_the_old_key_file(tmp_path: Path) -> None:
    write_key_file(tmp_path, "tsk_old.key")

    path = write_key_file(tmp_path, KEY)

    assert path.read_text().strip() == KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_redirected_output_gets_the_path_never_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_key_file(tmp_path, KEY)

    announce("abc123", KEY, path)  # stdout and stderr are captured: no terminal

    captured = capsys.readouterr()
    assert str(path) in captured.out
    assert KEY not in captured.out + captured.err
    assert KEY.split(".", 1)[1] not in captured.out + captured.err


def test_a_terminal_is_shown_the_key_and_stdout_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_key_file(tmp_path, KEY)
    terminal = Terminal()

    announce("abc123", KEY, path, terminal=terminal)

    assert KEY in terminal.getvalue()
    assert str(path) in terminal.getvalue()
    assert KEY not in capsys.readouterr().out
