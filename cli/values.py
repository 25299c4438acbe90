"""Command-line text into RPC params, checked before anything is sent: addresses, FIL amounts, CIDs,
tipsets, byte sizes. A value that does not parse is a CliError naming what was expected.

Amounts are read as Lotus's `types.ParseFIL` reads them (chain/types/fil.py): `1.5`, `1.5 FIL`,
`1500 attoFIL`, `250 mFIL`; addresses in either network's form (`t1...` or `f1...`), as go-address
reads them; tipsets as Lotus's `--tipset` flag: `@head`, `@<height>`, or comma-separated block CIDs.
"""

from typing import TYPE_CHECKING, Any

from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.address import Address, parse_with_network
from chain.types.fil import FilParseError, parse_fil
from cli.client import CliError

if TYPE_CHECKING:
    from cli.client import Session


def address(text: str, what: str = "address") -> str:
    """The address text, checked (checksum and all); CliError if it is not an address."""
    try:
        Address.parse(text.strip())
    except DecodeError as exc:
        raise CliError(f"failed to parse {what} {text!r}: {exc}") from None
    return text.strip()


def address_network(text: str) -> str:
    """The network prefix ('t' or 'f') an address text is written with."""
    return parse_with_network(text)[1]


def amount(text: str, what: str = "amount") -> int:
    """attoFIL of a non-negative FIL amount."""
    try:
        return parse_fil(text, allow_negative=False)
    except FilParseError as exc:
        raise CliError(f"failed to parse {what} {text!r}: {exc}") from None


def attofil(text: str, what: str) -> int:
    """A non-negative whole number of attoFIL (gas prices, as Lotus's BigFromString)."""
    try:
        value = int(text)
    except ValueError:
        raise CliError(f"failed to parse {what} {text!r}: expected a whole number of attoFIL") from None
    if value < 0:
        raise CliError(f"{what} cannot be negative, got {value}")
    return value


def cid(text: str, what: str = "CID") -> dict[str, str]:
    """A CID as the JSON API takes it: {"/": "bafy..."}."""
    try:
        return {"/": str(CID.parse(text.strip()))}
    except (DecodeError, ValueError) as exc:
        raise CliError(f"failed to parse {what} {text!r}: {exc}") from None


async def tipset(s: "Session", text: str | None) -> list[dict[str, str]]:
    """The tipset key (JSON) a `--tipset` value names: [] (the head) for `@head` or nothing, the tipset
    at a height for `@<height>`, else the comma-separated block CIDs."""
    spec = (text or "").strip()
    if spec in ("", "@head"):
        return []
    if spec.startswith("@"):
        try:
            height = int(spec[1:])
        except ValueError:
            raise CliError(
                f"failed to parse tipset {spec!r}: expected @head, @<height> or block CIDs"
            ) from None
        found: dict[str, Any] = await s.call("ChainGetTipSetByHeight", height, [])
        return list(found["Cids"])
    return [cid(part, "tipset block CID") for part in spec.split(",") if part.strip()]


def hex_bytes(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError as exc:
        raise CliError(f"failed to decode {what} as hex: {exc}") from None
