"""The value formats of the client commands (cli/output.py) against Lotus's (types.FIL, SizeStr, DeciStr,
cliutil.EpochTime with durafmt), tables without padding outside a terminal, and `--json` as given."""

import io
import json

import pytest

from actors import builtin
from cli.output import (
    Output,
    actor_name,
    deci_str,
    duration,
    epoch_time,
    fil,
    fil_short,
    power_shares,
    size_str,
    when,
)


@pytest.mark.parametrize(
    ("atto", "text"),
    [
        (0, "0 FIL"),
        ("1500000000000000000", "1.5 FIL"),
        (1, "0.000000000000000001 FIL"),
        (10**23, "100000 FIL"),
    ],
)
def test_fil(atto: int | str, text: str) -> None:
    assert fil(atto) == text


def test_fil_short() -> None:
    assert (fil_short(0), fil_short(10**17), fil_short("1036266259541080155030")) == (
        "0",
        "100 mFIL",
        "1036.266 FIL",
    )


@pytest.mark.parametrize(
    ("size", "sizes", "decis"),
    [
        (0, "0 B", "0 B"),
        (2048, "2 KiB", "2 Ki"),
        (1536, "1.5 KiB", "1.5 Ki"),
        (8 << 20, "8 MiB", "8 Mi"),
        (1000, "1000 B", "1e+03"),
    ],
)
def test_sizes(size: int, sizes: str, decis: str) -> None:
    assert (size_str(size), deci_str(size)) == (sizes, decis)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (61, "1 minute 1 second"),
        (3600 * 25 + 59, "1 day 1 hour"),
        (7 * 86400 + 5, "1 week 5 seconds"),
        (400 * 86400, "1 year 5 weeks"),
    ],
)
def test_duration_keeps_the_first_two_units(seconds: int, text: str) -> None:
    assert duration(seconds) == text


def test_epoch_time() -> None:
    assert epoch_time(10, 5, 30) == "5 (2 minutes 30 seconds ago)"
    assert epoch_time(10, 10, 30) == "10 (now)"
    assert epoch_time(10, 12, 4) == "12 (in 8 seconds)"


def test_when() -> None:
    assert when(1700000016) == "2023-11-14 22:13:36 UTC"
    assert when(1700000016, now=1700000020) == "2023-11-14 22:13:36 UTC (4 seconds ago)"


def test_power_shares_of_the_network() -> None:
    mine = {"RawBytePower": "2048", "QualityAdjPower": "20480"}
    total = {"RawBytePower": "8192", "QualityAdjPower": "40960"}
    assert power_shares(mine, total) == ("20 Ki / 40 Ki (50.0000%)", "2 KiB / 8 KiB (25.0000%)")
    nothing = {"RawBytePower": "0", "QualityAdjPower": "0"}
    assert power_shares(nothing, nothing) == ("0 B / 0 B (0.0000%)", "0 B / 0 B (0.0000%)")


def test_actor_names_from_code_cids() -> None:
    assert actor_name({"/": str(builtin.ACCOUNT_ACTOR_CODE)}) == "account"
    assert actor_name(str(builtin.MINER_ACTOR_CODE)) == "storageminer"
    assert actor_name("bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4") == ""
    assert actor_name("not a cid") == ""


def test_tables_to_a_pipe_have_no_padding() -> None:
    stream = io.StringIO()
    out = Output(json_mode=False, file=stream)
    out.table(
        ["Address", "Balance"], [["t01000", "1 FIL"], ["t1abc[bold]x[/bold]", "20 FIL"]], right=("Balance",)
    )
    out.fields([("Key", "[not markup]"), ("Longer key", "v")])
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["Address", "Balance"]
    assert lines[2:4] == ["t01000                  1 FIL", "t1abc[bold]x[/bold]    20 FIL"]  # no markup
    assert lines[4:] == ["Key         [not markup]", "Longer key  v"]
    assert all(line == line.rstrip() for line in lines)


def test_json_mode_prints_only_the_json() -> None:
    stream = io.StringIO()
    out = Output(json_mode=True, file=stream)
    out.line("hidden")
    out.table(["A"], [["hidden"]])
    out.fields([("hidden", "x")])
    assert out.json({"Height": 3, "Cids": [{"/": "bafy"}]})
    assert json.loads(stream.getvalue()) == {"Height": 3, "Cids": [{"/": "bafy"}]}
    assert not Output(json_mode=False, file=io.StringIO()).json(1)
