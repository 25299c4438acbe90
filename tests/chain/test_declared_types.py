"""Every declared type (chain.encoding.schema), found by walking the packages: CBOR and Lotus JSON round
trips of generated values, and hostile input that may only ever raise DecodeError.

A new type is tested by being declared. A hand-written type used as a field needs a strategy in LEAVES.
"""

import contextlib
import dataclasses
import importlib
import json
import pkgutil
from datetime import UTC
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.market.types import DealLabelKind
from actors.paych.types import SignedVoucher, UpdateChannelStateParams
from chain.crypto.signature import Signature
from chain.encoding import dagcbor, schema
from chain.encoding.errors import DecodeError
from chain.encoding.schema import (
    BigInt,
    BigIntKind,
    BytesKind,
    CborMap,
    CborTuple,
    CidKind,
    EnumKind,
    Int64,
    IntKind,
    JsonOnlyKind,
    Kind,
    ListKind,
    LotusJson,
    NestedKind,
    OptionalKind,
    Raw,
    ScalarKind,
    declared_types,
    fields,
    replace,
)
from chain.types.address import Address, UndefAddressKind
from chain.types.bitfield import BitField
from chain.types.message import Message
from chain.types.receipt import MessageReceipt
from chain.types.tipset import TipSet, TipSetKey
from node.sealing.sectors import CommitmentCidKind, SealProofKind
from proofs.registered import SEAL_PARAMS
from rpc.jsontypes import JSON_VALUE_KIND, FloatKind, JsonValueKind, TimeKind
from rpc.methods.state_types import Decoded
from tests.chain.hostile import decodes_or_refuses
from tests.chain.type_strategies import (
    addresses,
    block_headers,
    cids,
    dag_cbor_values,
    messages,
    receipts,
    signatures,
)

PACKAGES = ("chain", "actors", "node", "rpc")


def _import_all() -> None:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            importlib.import_module(info.name)


_import_all()
# Only the packages' own declarations (test modules declare stand-in types of their own).
DECLARED = sorted(
    (c for c in declared_types(LotusJson) if c.__module__.split(".")[0] in PACKAGES),
    key=lambda c: f"{c.__module__}.{c.__qualname__}",
)
CBOR_TYPES = [c for c in DECLARED if issubclass(c, CborTuple)]

# Strategies of the hand-written types that declared types hold.
LEAVES: dict[type, st.SearchStrategy[Any]] = {
    Address: addresses,
    Signature: signatures,
    TipSetKey: st.lists(cids, max_size=3).map(lambda c: TipSetKey(tuple(c))),
    TipSet: block_headers(height=1).map(lambda h: TipSet((h,))),
    # JSON does not carry a receipt's encoding version: it reads back as version 1
    MessageReceipt: receipts.filter(lambda r: r.version == 1),
    # an RPC result's decoded value comes back from JSON as plain JSON (tests/rpc check the typed form);
    # null is no value at all
    Decoded: st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )
    .filter(lambda v: v is not None)
    .map(lambda v: Decoded(JSON_VALUE_KIND, v)),
    BitField: st.one_of(
        st.lists(st.integers(0, 2000), max_size=8).map(BitField.from_bits),
        st.tuples(st.integers(0, 1 << 62), st.integers(0, 1 << 20)).map(
            lambda t: BitField.from_range(t[0], t[0] + t[1])
        ),
    ),
}

# Strategies of the kinds a module defines for itself (a field whose codec is neither a declared type
# nor a hand-written class).
KINDS: dict[type[Kind], st.SearchStrategy[Any]] = {
    # Lotus JSON writes a byte label as "" (go-state-types DealLabel), so only text labels round-trip
    # through JSON; tests/actors/test_market.py covers byte labels in CBOR.
    DealLabelKind: st.text(max_size=20),
    UndefAddressKind: st.none() | addresses,
    # JSON-only kinds of API shapes (rpc/jsontypes.py)
    TimeKind: st.datetimes(timezones=st.just(UTC)),
    JsonValueKind: st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    ),
    FloatKind: st.floats(allow_nan=False, allow_infinity=False),
    # the sector store's index entries (node/sealing/sectors.py)
    SealProofKind: st.sampled_from(sorted(SEAL_PARAMS)),
    CommitmentCidKind: st.binary(min_size=32, max_size=32),
}


# Declared types whose values obey rules beyond their fields' kinds.
CONSTRAINED: dict[type, st.SearchStrategy[Any]] = {
    Message: messages(),
}


def _leaf_strategy(cls: type) -> st.SearchStrategy[Any]:
    for leaf, strategy in LEAVES.items():
        if issubclass(cls, leaf):
            return strategy
    raise AssertionError(f"{cls.__name__} is used as a field but has no strategy in LEAVES")


def strategy_for_kind(kind: Kind, depth: int = 0) -> st.SearchStrategy[Any]:
    if type(kind) in KINDS:
        return KINDS[type(kind)]
    if isinstance(kind, IntKind):
        return st.integers(kind.lo, kind.hi)
    if isinstance(kind, BigIntKind):
        return st.integers(-(1 << 200), 1 << 200)
    if isinstance(kind, BytesKind):
        if kind.length is not None:
            return st.binary(min_size=kind.length, max_size=kind.length)
        return st.binary(max_size=min(kind.max_len, 64))
    if isinstance(kind, ScalarKind):
        return st.booleans() if kind.python_type is bool else st.text(max_size=20)
    if isinstance(kind, CidKind):
        return cids
    if isinstance(kind, EnumKind):
        return st.sampled_from(list(kind.enum))
    if isinstance(kind, OptionalKind):
        return st.none() | strategy_for_kind(kind.inner, depth)
    if isinstance(kind, ListKind):
        if depth >= 2:  # deep lists stay empty (and a type that lists itself is not expanded forever)
            return st.just(())
        return st.lists(strategy_for_kind(kind.inner, depth + 1), max_size=3).map(tuple)
    if isinstance(kind, NestedKind | JsonOnlyKind):  # JsonOnlyKind: API shapes (LotusJson, TipSet)
        if issubclass(kind.cls, LotusJson):
            return strategy_for(kind.cls, depth + 1)
        return _leaf_strategy(kind.cls)
    if isinstance(kind, Raw):
        return dag_cbor_values
    raise AssertionError(f"no strategy for kind {kind!r}")


def strategy_for(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    if cls in CONSTRAINED:
        return CONSTRAINED[cls]
    kwargs = {f.name: strategy_for_kind(f.kind, depth) for f in fields(cls)}
    return st.builds(cls, **kwargs)


def test_types_are_declared() -> None:
    # The walk finds the chain types; a refactor that hides them from it would test nothing.
    names = {c.__name__ for c in DECLARED}
    assert {"BlockHeader", "Message", "SignedMessage", "BeaconEntry", "PoStProof"} <= names
    # ... and the actors' states, params and returns.
    assert {"MinerState", "MinerInfo", "PowerState", "DealProposal", "SignedVoucher", "Actor"} <= names


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=8), inner),
)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE_EXAMPLES = 200


@pytest.mark.parametrize("cls", CBOR_TYPES, ids=lambda c: c.__qualname__)
@SETTINGS
@given(data=st.data())
def test_cbor_round_trip(cls: type[CborTuple], data: st.DataObject) -> None:
    value = data.draw(strategy_for(cls))
    encoded = dagcbor.encode(value.to_cbor())
    decoded = cls.from_cbor(dagcbor.decode(encoded))
    assert decoded == value
    assert dagcbor.encode(decoded.to_cbor()) == encoded
    assert cls.from_bytes(value.to_bytes()) == value


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__qualname__)
@SETTINGS
@given(data=st.data(), network=st.sampled_from(["f", "t"]))
def test_json_round_trip(cls: type[LotusJson], data: st.DataObject, network: str) -> None:
    value = data.draw(strategy_for(cls))
    written = json.loads(json.dumps(value.to_json(network)))
    assert cls.from_json(written) == value
    assert set(written) >= {f.go for f in fields(cls)}


# Hostile input does not depend on the type it is given to: each value drawn goes to every type (one
# draw for all of them, not one per type: drawing the values is what costs), and each type sees
# HOSTILE_EXAMPLES values.
HOSTILE = settings(SETTINGS, max_examples=HOSTILE_EXAMPLES)


@HOSTILE
@given(raw=dag_cbor_values)
def test_hostile_cbor_raises_decode_error_only(raw: Any) -> None:
    decodes_or_refuses((cls.from_cbor for cls in CBOR_TYPES), raw)


def _accepts(kind: Kind, raw: Any) -> bool:
    try:
        kind.decode(raw, "field")
    except DecodeError:
        return False
    return True


@pytest.mark.parametrize("cls", CBOR_TYPES, ids=lambda c: c.__qualname__)
@SETTINGS
@given(data=st.data())
def test_hostile_fields_name_the_field(cls: type[CborTuple], data: st.DataObject) -> None:
    """A valid value with one field replaced by junk fails with that field's Go name in the message."""
    value = data.draw(strategy_for(cls))
    raw = value.to_cbor()
    declared = fields(cls)
    if not declared:
        return
    index = data.draw(st.integers(0, len(declared) - 1))
    # Junk the field's kind would accept (text for a string field) is not junk for that field.
    candidates = [j for j in ("text", 1.5, {"k": 1}, -(1 << 64)) if not _accepts(declared[index].kind, j)]
    if not candidates:
        return
    junk = data.draw(st.sampled_from(candidates))
    if issubclass(cls, CborMap):
        raw[declared[index].go] = junk
    else:
        raw[index] = junk
    with pytest.raises(DecodeError, match=rf"{cls.__name__}\.{declared[index].go}"):
        cls.from_cbor(raw)


REPLACEABLE = [c for c in DECLARED if getattr(c, "_init_names_", None) is not None]
_JUNK = ("text", 1.5, -(1 << 64), None, b"x", ())


def _outcome(build: Any, base: Any, changes: dict[str, Any]) -> Any:
    try:
        return build(base, **changes)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("cls", REPLACEABLE, ids=lambda c: c.__qualname__)
@settings(SETTINGS, max_examples=10)
@given(data=st.data())
def test_replace_checks_only_the_changed_fields_as_the_constructor_would(
    cls: type[LotusJson], data: st.DataObject
) -> None:
    """replace checks the fields it changes, not the ones it keeps: the same value or the same error
    as dataclasses.replace (the constructor, every field checked), for a value built by its
    constructor and one decoded from CBOR (built without the constructor's checks), changed to
    another valid value's fields or to junk."""
    value = data.draw(strategy_for(cls))
    other = data.draw(strategy_for(cls))
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=3)) if names else []
    changes = {name: data.draw(st.sampled_from([getattr(other, name), *_JUNK])) for name in chosen}
    bases = [value]
    if issubclass(cls, CborTuple):
        bases.append(cls.from_cbor(dagcbor.decode(dagcbor.encode(value.to_cbor()))))
    for base in bases:
        got = _outcome(replace, base, changes)
        expected = _outcome(dataclasses.replace, base, changes)
        assert got == expected
        if isinstance(got, cls):  # the same values, normalised alike (an IntEnum equals its number)
            assert [(k, type(v)) for k, v in got.__dict__.items()] == [
                (k, type(v)) for k, v in expected.__dict__.items()
            ]


@HOSTILE
@given(raw=JSON_VALUES)
def test_hostile_json_raises_decode_error_only(raw: Any) -> None:
    decodes_or_refuses((cls.from_json for cls in DECLARED), raw)


# Hand-written codecs of whole values (formats a declaration cannot say) get the same checks.
HAND_WRITTEN: dict[type, st.SearchStrategy[Any]] = {
    BitField: LEAVES[BitField],
    UpdateChannelStateParams: st.builds(
        UpdateChannelStateParams,
        strategy_for(SignedVoucher),
        st.binary(max_size=40),
        st.none() | st.binary(max_size=40),
    ),
}


@pytest.mark.parametrize("cls", list(HAND_WRITTEN), ids=lambda c: c.__qualname__)
@SETTINGS
@given(data=st.data(), network=st.sampled_from(["f", "t"]))
def test_hand_written_round_trips(cls: type, data: st.DataObject, network: str) -> None:
    value = data.draw(HAND_WRITTEN[cls])
    encoded = dagcbor.encode(value.to_cbor())
    assert cls.from_cbor(dagcbor.decode(encoded)) == value  # type: ignore[attr-defined]
    written = json.loads(json.dumps(value.to_json(network)))
    assert cls.from_json(written) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", list(HAND_WRITTEN), ids=lambda c: c.__qualname__)
@SETTINGS
@given(raw=dag_cbor_values, json_raw=JSON_VALUES)
def test_hand_written_hostile_input_raises_decode_error_only(cls: type, raw: Any, json_raw: Any) -> None:
    with contextlib.suppress(DecodeError):
        cls.from_cbor(raw)  # type: ignore[attr-defined]
    with contextlib.suppress(DecodeError):
        cls.from_json(json_raw)  # type: ignore[attr-defined]


class _Colour(IntEnum):
    RED = 1
    BLUE = 7


def test_enum_fields_are_plain_numbers_in_cbor() -> None:
    """An IntEnum field encodes as its number, so the CBOR value (not only its bytes) reads back."""

    class Paint(CborTuple):
        colour: _Colour

    raw = Paint(_Colour.BLUE).to_cbor()
    assert raw == [7] and type(raw[0]) is int
    assert Paint.from_cbor(raw) == Paint(_Colour.BLUE)
    assert Paint.from_json(Paint(_Colour.RED).to_json()).colour is _Colour.RED
    with pytest.raises(DecodeError, match=r"Paint\.Colour: 3 is not a valid _Colour"):
        Paint.from_cbor([3])


class _Entry(CborTuple):
    epoch: Int64
    amount: BigInt


class _Table(CborTuple, kw_only=True):
    entries: tuple[_Entry, ...] = ()
    colours: tuple[_Colour, ...] = ()
    note: str = "none"


def test_constructors_check_and_normalise_as_declared() -> None:
    """Declared types build instances through their own __init__ (same signature as the dataclass's):
    defaults, keyword-only fields and the declared checks hold; a list of items that pass is kept as a
    tuple, one that does not names the item."""
    table = _Table(entries=(_Entry(1, 5), _Entry(2, -3)), colours=[_Colour.RED, 7])  # type: ignore[arg-type]
    assert table.colours == (_Colour.RED, _Colour.BLUE) and type(table.colours[1]) is _Colour
    assert table.note == "none" and _Table().entries == ()
    assert _Table.from_cbor(table.to_cbor()) == table
    entries = (_Entry(1, 5),)
    assert _Table(entries=entries).entries is entries
    with pytest.raises(TypeError):
        _Table((_Entry(1, 5),))  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"_Table\.Entries\[1\]: expected _Entry"):
        _Table(entries=(_Entry(1, 5), 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"_Entry\.Epoch"):
        _Entry(1 << 63, 0)
    with pytest.raises(TypeError, match="missing"):
        _Entry(1)  # type: ignore[call-arg]


def test_decoding_names_the_refused_item_of_a_list() -> None:
    """A list's items are decoded under the list's path and, only when one is refused, again each under
    its own: the error is the one the item gives, naming it (nested lists and declared items alike)."""
    good = _Table(entries=(_Entry(1, 5), _Entry(2, -3)), colours=(_Colour.RED,)).to_cbor()
    assert _Table.from_cbor(good).entries == (_Entry(1, 5), _Entry(2, -3))
    bad_entry = [[[1, b"\x00\x05"], [2, "x"]], [1], "none"]
    with pytest.raises(DecodeError, match=r"^_Table\.Entries\[1\]\.Amount: expected a big integer as bytes"):
        _Table.from_cbor(bad_entry)
    with pytest.raises(DecodeError, match=r"^_Table\.Entries\[0\]: expected an array of 2 fields, got 3"):
        _Table.from_cbor([[[1, b"", 3]], [], "none"])
    with pytest.raises(DecodeError, match=r"^x\[2\]: expected an unsigned 64-bit integer"):
        schema.ListKind(schema.UINT64_KIND, 9).decode([1, 2, -1], "x")
    nested = schema.ListKind(schema.ListKind(schema.UINT64_KIND, 9), 9)
    assert nested.decode([[1], [], [2, 3]], "y") == ((1,), (), (2, 3))
    with pytest.raises(DecodeError, match=r"^y\[1\]\[0\]: expected an unsigned 64-bit integer"):
        nested.decode([[1], ["a"]], "y")


def test_replace_is_dataclasses_replace_with_the_declared_checks() -> None:
    table = _Table(entries=(_Entry(1, 5),), note="a")
    changed = replace(table, note="b", colours=[1])  # type: ignore[list-item]
    assert changed == dataclasses.replace(table, note="b", colours=[1])  # type: ignore[list-item]
    assert changed.colours == (_Colour.RED,) and changed.entries is table.entries and table.note == "a"
    with pytest.raises(ValueError, match=r"_Table\.Colours\[0\]: 3 is not a valid _Colour"):
        replace(table, colours=(3,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no field 'colour'"):
        replace(table, colour=())
    message = Message(
        to=Address.new_id(1),
        from_=Address.new_id(2),
        nonce=1,
        value=0,
        gas_limit=1,
        gas_fee_cap=0,
        gas_premium=0,
        method=0,
        params=b"",
    )
    message.cid()  # caches its bytes and CID: a replaced message has its own
    other = replace(message, nonce=2)
    assert other.cid() == dataclasses.replace(message, nonce=2).cid() != message.cid()
    plain = _Plain(1)
    assert replace(plain, x=2) == _Plain(2)  # other dataclasses: dataclasses.replace


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    x: int
