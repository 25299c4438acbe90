"""Kinds of API values that exist only in JSON (no CBOR form): Go's time.Time, free-form JSON, float64,
and lists that Lotus writes as `[]` when empty.

They are used as annotations of RPC handlers like the declared kinds (`-> GoTime`, `-> JsonValue`).
"""

import base64
import typing
from datetime import UTC, datetime
from typing import Any, Final

from chain.encoding.errors import DecodeError
from chain.encoding.schema import ArrayKind as ArrayKind  # declared with the other list kinds
from chain.encoding.schema import BytesKind, Kind, kind_name
from chain.encoding.schema import array_kind as array_kind


class TimeKind(Kind):
    """Go's time.Time in JSON: RFC 3339 with nanoseconds, trailing zeros of the fraction dropped."""

    label = "time"

    def decode(self, raw: Any, what: str) -> datetime:
        return self.from_json(raw, what)

    def to_json(self, value: Any, network: str) -> str:
        dt: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        text = dt.isoformat(timespec="microseconds")
        stamp, offset = text[:26], text[26:]
        stamp = stamp.rstrip("0").rstrip(".")
        return stamp + ("Z" if offset in ("+00:00", "") else offset)

    def from_json(self, raw: Any, what: str) -> datetime:
        if type(raw) is not str:
            raise DecodeError(f"{what}: expected an RFC 3339 time, got {kind_name(raw)}")
        text = raw.replace("Z", "+00:00")
        head, dot, rest = text.partition(".")
        if dot:  # Python reads at most microseconds: cut nanoseconds to six digits
            digits = len(rest) - len(rest.lstrip("0123456789"))
            text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise DecodeError(f"{what}: {raw[:60]!r} is not an RFC 3339 time") from None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


class JsonValueKind(Kind):
    """Any JSON value, passed through as it is (the OpenRPC document, free-form maps)."""

    label = "JSON"

    def decode(self, raw: Any, what: str) -> Any:
        return raw

    def json_schema(self) -> dict[str, Any]:
        return {}


TIME_KIND: Final = TimeKind()
JSON_VALUE_KIND: Final = JsonValueKind()
GoTime = typing.Annotated[datetime, TIME_KIND]
JsonValue = typing.Annotated[Any, JSON_VALUE_KIND]


class FloatKind(Kind):
    """Go's float64 in JSON: a number (an integer is accepted, as encoding/json does; a boolean is not)."""

    label = "float64"

    def decode(self, raw: Any, what: str) -> float:
        if type(raw) not in (int, float):
            raise DecodeError(f"{what}: expected a number, got {kind_name(raw)}")
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise DecodeError(f"{what}: {raw!r} is not a finite number")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number"}


class NonNilBytesKind(BytesKind):
    """Bytes written as base64 even when empty: a Go []byte that is never nil (ChainExport's pieces,
    whose empty last piece is `""`, not null)."""

    def to_json(self, value: Any, network: str) -> str:
        return base64.b64encode(value).decode("ascii")


FLOAT_KIND: Final = FloatKind()
Float64 = typing.Annotated[float, FLOAT_KIND]
