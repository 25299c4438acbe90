"""chain.encoding.carry.carried: fields carried over by name, given ones first, missing ones refused."""

from dataclasses import dataclass, field

import pytest

from chain.encoding.carry import carried
from chain.encoding.schema import LotusJson, Uint64


@dataclass(frozen=True)
class Source:
    a: int
    b: str
    unused: float = 0.5


@dataclass(frozen=True)
class Other:
    b: str
    c: bytes


@dataclass(frozen=True)
class Target:
    a: int
    b: str
    c: bytes = b"default"
    d: tuple[int, ...] = field(default_factory=tuple)


class Declared(LotusJson, kw_only=True):
    a: Uint64
    b: str


def test_fields_come_from_the_first_source_that_has_them() -> None:
    assert carried(Target, Source(1, "first"), Other("second", b"c")) == Target(1, "first", b"c")


def test_given_fields_win_over_the_sources() -> None:
    assert carried(Target, Source(1, "b"), a=7, d=(3,)) == Target(7, "b", b"default", (3,))


def test_a_field_no_source_has_keeps_its_default() -> None:
    assert carried(Target, Source(1, "b")) == Target(1, "b", b"default", ())


def test_a_required_field_no_source_has_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"Target: no value for a \(given, nor in Other\)"):
        carried(Target, Other("b", b"c"))


def test_a_given_field_the_target_does_not_declare_is_refused() -> None:
    with pytest.raises(TypeError, match="Target declares no field e"):
        carried(Target, Source(1, "b"), e=1)


def test_declared_types_are_carried_with_their_checks() -> None:
    assert carried(Declared, Source(5, "x")).to_json() == {"A": 5, "B": "x"}
    with pytest.raises(TypeError, match="Declared: no value for a"):
        carried(Declared, Other("x", b""))
