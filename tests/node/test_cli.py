"""The `filpy` entry point itself: logging formats, and a closed stdout ends a command quietly."""

import json
import os
import subprocess
import sys

import pytest
import structlog

from node import logs


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


def test_log_lines_are_key_value_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(json=True, level="info")
    structlog.get_logger("t").info("sealed", sector=7)
    structlog.get_logger("t").debug("hidden")
    line = capsys.readouterr().err.strip()
    record = json.loads(line)
    assert (record["event"], record["sector"], record["level"]) == ("sealed", 7, "info")
    logs.configure(json=False, level="debug")
    structlog.get_logger("t").debug("shown", piece="baga")
    text = capsys.readouterr().err
    assert "event='shown'" in text and "level='debug'" in text and "piece='baga'" in text
