"""The bootstrap admin API key of ``make run``: kept in a 0600 file, never on the log stream.

``make run > file`` must not write the key into the file, so the key itself goes only to a
terminal (stderr, when it is one); otherwise only the path of the key file is printed.
"""

import os
import sys
from pathlib import Path
from typing import TextIO

KEY_FILE = "bootstrap-admin-key"


def write_key_file(data_dir: Path, api_key: str) -> Path:
    """Write the key to ``data_dir/bootstrap-admin-key``, readable by its owner only.

    The file is created 0600 from the start (never world-readable for an instant) and then
    renamed over any older one, which an earlier bootstrap left for a key no longer active.
    """
    path = data_dir / KEY_FILE
    partial = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(api_key + "\n")
    os.replace(partial, path)
    return path


def announce(
    key_id: str,
    api_key: str,
    path: Path,
    terminal: TextIO | None = None,
    out: TextIO | None = None,
) -> None:
    """Show the key on the terminal if stderr is one; else print only where it is kept."""
    terminal = terminal or sys.stderr
    out = out or sys.stdout
    where = f"It is kept in {path} (mode 0600). Issue more with `sessionctl keys create`."
    if terminal.isatty():
        print(
            f"\nBootstrap admin API key (key id {key_id}):\n  {api_key}\n{where}\n",
            file=terminal,
            flush=True,
        )
    else:
        print(
            f"\nBootstrap admin API key (key id {key_id}) written to {path} (mode 0600); "
            f"read it with `cat {path}`. Issue more with `sessionctl keys create`.\n",
            file=out,
            flush=True,
        )
