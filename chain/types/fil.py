"""FIL amounts as Lotus reads and writes them (lotus chain/types/fil.go).

Amounts are attoFIL integers (1 FIL = 10^18 attoFIL) everywhere in filpy; this module only turns them
into text and back.

- `format_fil(n)` is Lotus's `FIL.String()`: the exact decimal value in FIL, trailing zeros trimmed,
  then " FIL" ("1.5 FIL", "0 FIL", "-0.000000000000000001 FIL").
- `format_fil_short(n)` is Lotus's `FIL.Short()`: the largest of aFIL, fFIL, pFIL, nFIL, μFIL, mFIL
  and FIL that keeps the value under 1000 (FIL has no upper bound), three decimals at most, rounded half
  away from zero as Go's big.Rat.FloatString ("100 mFIL", "123456.234 FIL"); zero is "0" with no unit.
- `parse_fil(text)` accepts what Lotus's `types.ParseFIL` accepts: a decimal number (optionally
  negative, no exponent) of at most 50 characters, then optionally a unit: "FIL" (the default) or
  "attoFIL"/"aFIL", case-insensitive, with or without a space before it. filpy also accepts the other
  units `format_fil_short` writes, so that everything it prints reads back: "fFIL"/"femtoFIL",
  "pFIL"/"picoFIL", "nFIL"/"nanoFIL", "μFIL"/"uFIL"/"microFIL", "mFIL"/"milliFIL". A value that is
  not a whole number of attoFIL is an error, as in Lotus.
"""

import re
from typing import Final

FIL_PRECISION: Final = 10**18
# Lotus refuses numbers longer than this before parsing them (ParseFIL).
MAX_NUMBER_LENGTH: Final = 50

# Units by the attoFIL they stand for; keys are lower case (Lotus lower-cases the suffix).
_UNITS: Final = {
    "": FIL_PRECISION,
    "fil": FIL_PRECISION,
    "mfil": 10**15,
    "millifil": 10**15,
    "μfil": 10**12,
    "ufil": 10**12,
    "microfil": 10**12,
    "nfil": 10**9,
    "nanofil": 10**9,
    "pfil": 10**6,
    "picofil": 10**6,
    "ffil": 10**3,
    "femtofil": 10**3,
    "afil": 1,
    "attofil": 1,
}
_UNIT_NAMES: Final = {
    10**15: "mFIL",
    10**12: "μFIL",
    10**9: "nFIL",
    10**6: "pFIL",
    10**3: "fFIL",
    1: "attoFIL",
}
# The prefixes of the short form, smallest first (Lotus's unitPrefixes).
_SHORT_PREFIXES: Final = ("a", "f", "p", "n", "μ", "m")
# Go's big.Rat.SetString on the characters ParseFIL keeps: an optional minus, digits with at most one
# decimal point, at least one digit.
_NUMBER: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class FilParseError(ValueError):
    """Text that is not an amount of FIL; the message says what is wrong."""


def parse_fil(text: str, *, allow_negative: bool = True) -> int:
    """The attoFIL amount that text names (see the module docstring for the accepted forms)."""
    if not isinstance(text, str):
        raise FilParseError(f"expected an amount as text, got {type(text).__name__}")
    stripped = text.strip()
    # As Lotus: the number is the longest prefix made of digits, '.' and '-'; the rest is the unit.
    end = 0
    while end < len(stripped) and stripped[end] in "-.0123456789":
        end += 1
    number, suffix = stripped[:end], stripped[end:]
    unit = suffix.strip().lower()
    if unit not in _UNITS:
        raise FilParseError(
            f"unrecognized unit {suffix.strip()!r} in {text!r}: expected FIL, mFIL, μFIL, nFIL, pFIL, "
            "fFIL or attoFIL"
        )
    if len(number) > MAX_NUMBER_LENGTH:
        raise FilParseError(f"number too long: {len(number)} characters (at most {MAX_NUMBER_LENGTH})")
    if not _NUMBER.fullmatch(number):
        raise FilParseError(f"failed to parse {number!r} as a decimal number")
    negative = number.startswith("-")
    digits = number.lstrip("-")
    whole, _, fraction = digits.partition(".")
    scale = _UNITS[unit]
    # value = (whole.fraction) * scale, exactly: an integer only when the fraction's digits vanish.
    denominator: int = 10 ** len(fraction)
    numerator = int(whole or "0") * denominator + int(fraction or "0")
    amount, remainder = divmod(numerator * scale, denominator)
    if remainder:
        name = _UNIT_NAMES.get(scale, "FIL")
        raise FilParseError(f"invalid {name} value: {number!r} is not a whole number of attoFIL")
    if negative:
        amount = -amount
    if amount < 0 and not allow_negative:
        raise FilParseError(f"amount {text!r} is negative")
    return amount


def _decimal(numerator: int, denominator: int, places: int) -> str:
    """numerator/denominator with `places` decimals, rounded half away from zero (Go's
    big.Rat.FloatString), trailing zeros and a bare point trimmed."""
    negative = numerator < 0
    scaled, remainder = divmod(abs(numerator) * 10**places, denominator)
    if 2 * remainder >= denominator:
        scaled += 1
    whole, fraction = divmod(scaled, 10**places)
    text = str(whole)
    if places:
        digits = str(fraction).rjust(places, "0").rstrip("0")
        if digits:
            text = f"{text}.{digits}"
    # Go prints "-0" when a negative value rounds to zero; a value this function sees never does
    # (the short form picks a unit that keeps at least one significant digit).
    return f"-{text}" if negative and scaled else text


def format_fil_unitless(atto: int) -> str:
    """The amount in FIL without the unit, as Lotus's FIL.Unitless(): exact, trailing zeros trimmed."""
    return _decimal(atto, FIL_PRECISION, 18) if atto else "0"


def format_fil(atto: int) -> str:
    """Lotus's FIL.String(): "1.5 FIL"."""
    return f"{format_fil_unitless(atto)} FIL"


def format_fil_short(atto: int) -> str:
    """Lotus's FIL.Short(): "1.234 μFIL", "100 mFIL", "123456.234 FIL"; zero is "0"."""
    if atto == 0:
        return "0"
    magnitude = abs(atto)
    unit = 1
    prefix = ""
    for candidate in _SHORT_PREFIXES:
        if magnitude < unit * 1000:
            prefix = candidate
            break
        unit *= 1000
    return f"{_decimal(atto, unit, 3)} {prefix}FIL"


def format_fil_nano(atto: int) -> str:
    """Lotus's FIL.Nano(): the amount in nFIL with up to nine decimals ("1.5 nFIL"); zero is "0"."""
    return f"{_decimal(atto, 10**9, 9)} nFIL" if atto else "0"


def format_attofil(atto: int) -> str:
    """The amount in attoFIL, as Lotus prints gas values: "1500 attoFIL"."""
    return f"{atto} attoFIL"
