"""The `filpy` entry point itself: a closed stdout ends a command quietly."""

import os
import subprocess
import sys


def test_closed_stdout_pipe_is_not_a_crash() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before filpy writes a byte
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "node.cli", "genesis", "example"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr
