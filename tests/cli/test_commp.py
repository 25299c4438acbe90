"""`filpy commp FILE`: Lotus's wording, sizes, CIDs, progress bar and errors."""

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1, parse_piece_cid_v2
from cli import commp as commp_cli
from cli import main as cli
from proofs import commp


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (127, "127 B"),
        (1016, "1016 B"),
        (2032, "1.984 KiB"),
        (1 << 30, "1 GiB"),
        (34091302912, "31.75 GiB"),
    ],
)
def test_size_str_matches_lotus(size: int, text: str) -> None:
    assert commp_cli.size_str(size) == text


def _lines(out: str) -> dict[str, str]:
    return dict(line.split(":  ", 1) for line in out.splitlines())


def test_prints_lotus_lines_then_ours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = os.urandom(1000)
    path = tmp_path / "payload.car"
    path.write_bytes(data)
    assert cli.main(["commp", str(path)]) == 0
    out = capsys.readouterr().out
    expected = commp.commp_of_bytes(data, native=False)
    assert out.splitlines()[0].startswith("CID:  baga6ea4seaq")
    lines = _lines(out)
    assert list(lines) == [
        "CID",
        "Piece size",
        "Piece size in bytes",
        "Padded piece size",
        "Payload size",
        "Piece CID v2",
    ]
    assert commitment_of_v1(CID.parse(lines["CID"])) == expected.commitment
    assert lines["Piece size"] == "1016 B"
    assert lines["Piece size in bytes"] == "1016"
    assert lines["Padded piece size"] == "1024"
    assert lines["Payload size"] == "1000"
    v2 = parse_piece_cid_v2(CID.parse(lines["Piece CID v2"]))
    assert (v2.commitment, v2.payload_size, v2.padded_size) == (expected.commitment, 1000, 1024)


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert cli.main(["commp", "--threads", "1", str(path)]) == 0
    lines = _lines(capsys.readouterr().out)
    assert commitment_of_v1(CID.parse(lines["CID"])) == commp.zero_piece_commitment(128)
    assert lines["Piece size"] == "127 B"


def test_progress_bar_for_large_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commp_cli, "PROGRESS_THRESHOLD", 1000)
    data = os.urandom(300_000)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    out = io.StringIO()
    args = cli.build_parser(["commp"]).parse_args(["commp", str(path)])
    assert commp_cli.run(args, out=out, console=console) == 0
    assert "commp" in screen.getvalue() and "big.bin" in screen.getvalue()
    assert _lines(out.getvalue())["Payload size"] == "300000"
    expected = commp.commp_of_bytes(data, native=False).commitment
    assert commitment_of_v1(CID.parse(_lines(out.getvalue())["CID"])) == expected


def test_no_progress_flag_draws_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commp_cli, "PROGRESS_THRESHOLD", 10)
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    screen = io.StringIO()
    args = cli.build_parser(["commp"]).parse_args(["commp", "--no-progress", str(path)])
    assert commp_cli.run(args, out=io.StringIO(), console=Console(file=screen, force_terminal=True)) == 0
    assert screen.getvalue() == ""


def test_missing_file_and_bad_threads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["commp", str(tmp_path / "absent")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["commp", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"filpy commp: {tmp_path}: is a directory\n"
    assert cli.main(["commp", "--threads", "0", str(tmp_path)]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
