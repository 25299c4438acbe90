"""FIL amounts: parsing and printing as Lotus does (chain/types/fil.go and its fil_test.go)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.types.fil import (
    FIL_PRECISION,
    FilParseError,
    format_attofil,
    format_fil,
    format_fil_nano,
    format_fil_short,
    format_fil_unitless,
    parse_fil,
)

# Lotus's TestFilShort table: ParseFIL(fil).Short() == expect, with the negative half derived as Lotus's
# table has it (the same digits with a minus sign).
LOTUS_SHORT = [
    ("1", "1 FIL"),
    ("1.1", "1.1 FIL"),
    ("12", "12 FIL"),
    ("123", "123 FIL"),
    ("123456", "123456 FIL"),
    ("123.23", "123.23 FIL"),
    ("123456.234", "123456.234 FIL"),
    ("123456.2341234", "123456.234 FIL"),
    ("123456.234123445", "123456.234 FIL"),
    ("0.1", "100 mFIL"),
    ("0.01", "10 mFIL"),
    ("0.001", "1 mFIL"),
    ("0.0001", "100 μFIL"),
    ("0.00001", "10 μFIL"),
    ("0.000001", "1 μFIL"),
    ("0.0000001", "100 nFIL"),
    ("0.00000001", "10 nFIL"),
    ("0.000000001", "1 nFIL"),
    ("0.0000000001", "100 pFIL"),
    ("0.00000000001", "10 pFIL"),
    ("0.000000000001", "1 pFIL"),
    ("0.0000000000001", "100 fFIL"),
    ("0.00000000000001", "10 fFIL"),
    ("0.000000000000001", "1 fFIL"),
    ("0.0000000000000001", "100 aFIL"),
    ("0.00000000000000001", "10 aFIL"),
    ("0.000000000000000001", "1 aFIL"),
    ("0.0000012", "1.2 μFIL"),
    ("0.00000123", "1.23 μFIL"),
    ("0.000001234", "1.234 μFIL"),
    ("0.0000012344", "1.234 μFIL"),
    ("0.00000123444", "1.234 μFIL"),
    ("0.0002212", "221.2 μFIL"),
    ("0.00022123", "221.23 μFIL"),
    ("0.000221234", "221.234 μFIL"),
    ("0.0002212344", "221.234 μFIL"),
    ("0.00022123444", "221.234 μFIL"),
]


@pytest.mark.parametrize(("text", "short"), LOTUS_SHORT + [("-" + t, "-" + s) for t, s in LOTUS_SHORT])
def test_short_form_matches_lotus_table(text: str, short: str) -> None:
    assert format_fil_short(parse_fil(text)) == short


@pytest.mark.parametrize(
    ("text", "atto"),
    [
        ("1", FIL_PRECISION),
        ("1.5", 15 * 10**17),
        ("1.5 FIL", 15 * 10**17),
        ("1.5FIL", 15 * 10**17),
        ("1.5 fil", 15 * 10**17),
        ("1500 attoFIL", 1500),
        ("1500 aFIL", 1500),
        ("1500attofil", 1500),
        ("0.000000000000000001", 1),
        ("-2.25", -225 * 10**16),
        (".5", 5 * 10**17),
        ("5.", 5 * FIL_PRECISION),
        ("007", 7 * FIL_PRECISION),
        ("0", 0),
        ("-0", 0),
        # filpy's extension: every unit the short form prints reads back
        ("2 mFIL", 2 * 10**15),
        ("2 milliFIL", 2 * 10**15),
        ("3 μFIL", 3 * 10**12),
        ("3 uFIL", 3 * 10**12),
        ("3 microFIL", 3 * 10**12),
        ("4 nFIL", 4 * 10**9),
        ("4 nanoFIL", 4 * 10**9),
        ("5 pFIL", 5 * 10**6),
        ("6 fFIL", 6000),
        ("6 femtoFIL", 6000),
        ("1.5 nFIL", 1_500_000_000),
        ("  1 FIL  ", FIL_PRECISION),
    ],
)
def test_parse(text: str, atto: int) -> None:
    assert parse_fil(text) == atto


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "failed to parse '' as a decimal number"),
        ("FIL", "failed to parse '' as a decimal number"),
        ("abc", "unrecognized unit 'abc'"),
        ("1 BTC", "unrecognized unit 'BTC'"),
        ("1e18", "unrecognized unit 'e18'"),
        ("1/2", "unrecognized unit '/2'"),
        ("+1", "unrecognized unit '+1'"),
        ("1,5", "unrecognized unit ',5'"),
        ("1 FIL FIL", "unrecognized unit 'FIL FIL'"),
        ("1.2.3", "failed to parse '1.2.3' as a decimal number"),
        ("--1", "failed to parse '--1' as a decimal number"),
        ("1-2", "failed to parse '1-2' as a decimal number"),
        (".", "failed to parse '.' as a decimal number"),
        ("-", "failed to parse '-' as a decimal number"),
        (
            "0.0000000000000000001",
            "invalid FIL value: '0.0000000000000000001' is not a whole number of attoFIL",
        ),
        ("1.5 attoFIL", "invalid attoFIL value: '1.5'"),
        ("0.0001 fFIL", "invalid fFIL value"),
        ("1" * 51, "number too long: 51 characters (at most 50)"),
    ],
)
def test_bad_input_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(FilParseError) as caught:
        parse_fil(text)
    assert message in str(caught.value)


def test_fifty_digit_numbers_are_still_read() -> None:
    assert parse_fil("1" * 50 + " attoFIL") == int("1" * 50)


def test_negative_amounts_can_be_refused() -> None:
    assert parse_fil("-1") == -FIL_PRECISION  # Lotus accepts them
    with pytest.raises(FilParseError, match="is negative"):
        parse_fil("-1", allow_negative=False)
    assert parse_fil("1", allow_negative=False) == FIL_PRECISION


def test_non_text_is_refused() -> None:
    with pytest.raises(FilParseError, match="expected an amount as text, got int"):
        parse_fil(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("atto", "text"),
    [
        (0, "0 FIL"),
        (FIL_PRECISION, "1 FIL"),
        (15 * 10**17, "1.5 FIL"),
        (1, "0.000000000000000001 FIL"),
        (-1, "-0.000000000000000001 FIL"),
        (100_000 * FIL_PRECISION, "100000 FIL"),
        (2_000_000_000 * FIL_PRECISION + 10, "2000000000.00000000000000001 FIL"),
        (-123_450_000_000_000_000_000, "-123.45 FIL"),
    ],
)
def test_string_form_is_lotus_fil_string(atto: int, text: str) -> None:
    assert format_fil(atto) == text
    assert format_fil_unitless(atto) == text.removesuffix(" FIL")


def test_short_form_edges() -> None:
    assert format_fil_short(0) == "0"  # Lotus prints zero without a unit
    assert format_fil_short(999) == "999 aFIL"
    assert format_fil_short(1000) == "1 fFIL"
    # halves round away from zero, as Go's big.Rat.FloatString
    assert format_fil_short(12345) == "12.345 fFIL"
    assert format_fil_short(123455) == "123.455 fFIL"
    assert format_fil_short(1234555) == "1.235 pFIL"
    assert format_fil_short(-1234555) == "-1.235 pFIL"
    assert format_fil_short(1234549) == "1.235 pFIL"
    assert format_fil_short(1234449) == "1.234 pFIL"
    assert format_fil_short(10**24) == "1000000 FIL"


def test_nano_and_atto_forms() -> None:
    assert format_fil_nano(0) == "0"
    assert format_fil_nano(1_500_000_000) == "1.5 nFIL"
    assert format_fil_nano(1) == "0.000000001 nFIL"
    assert format_fil_nano(FIL_PRECISION) == "1000000000 nFIL"
    assert format_attofil(1500) == "1500 attoFIL"


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_every_printed_amount_reads_back(atto: int) -> None:
    assert parse_fil(format_fil(atto)) == atto
    assert parse_fil(format_attofil(atto)) == atto
    assert parse_fil(format_fil_nano(atto)) == atto
