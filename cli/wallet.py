"""`filpy wallet ...`: the node's wallet, as `lotus wallet`.

    new [secp256k1|bls|delegated]   WalletNew; prints the address
    list [--addr-only] [--id] [--market]
                                    WalletList, with each address's balance and nonce (StateGetActor),
                                    ID (StateLookupID) and market funds (StateMarketBalance)
    balance [ADDR]                  WalletBalance (of the default address when none is given)
    send [--from ADDR] TO AMOUNT    as `filpy send`
    import [FILE|-] [--format ...]  WalletImport of a key as `lotus wallet export` writes it
    export ADDR [--format ...]      WalletExport, as hex of the Lotus KeyInfo JSON (hex-lotus)
    default | set-default ADDR      WalletDefaultAddress | WalletSetDefault
    delete ADDR                     WalletDelete (the key is kept aside in the keystore)

`--json` prints each command's main call's result as the node answered it (`wallet list`: WalletList).
"""

import argparse
from typing import TYPE_CHECKING, Any, Final

from cli.subcommands import command, group

if TYPE_CHECKING:
    from cli.client import Session

KEY_TYPES: Final = ("secp256k1", "bls", "delegated")
EXPORT_FORMATS: Final = ("hex-lotus", "json-lotus", "hex-eth")
IMPORT_FORMATS: Final = ("hex-lotus", "json-lotus", "hex-eth")
# A key file is a few hundred bytes; refuse to read more than this from a file or stdin.
MAX_KEY_BYTES: Final = 64 << 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cli.send import add_send_arguments

    sub = group(parser, "wallet_command")
    new = command(sub, "new", new_key, "generate a new key of the given type")
    new.add_argument("type", nargs="?", default="secp256k1", choices=KEY_TYPES, help="key type (secp256k1)")
    listing = command(sub, "list", list_addresses, "list the wallet's addresses")
    listing.add_argument("-a", "--addr-only", action="store_true", help="only print the addresses")
    listing.add_argument("-i", "--id", action="store_true", help="show ID addresses")
    listing.add_argument("-m", "--market", action="store_true", help="show market balances")
    balance_parser = command(sub, "balance", balance, "the balance of an address (the default one)")
    balance_parser.add_argument("address", nargs="?", metavar="ADDR", help="address (default: the default)")
    add_send_arguments(sub.add_parser("send", help="send FIL, as `filpy send`", description="send FIL"))
    imported = command(sub, "import", import_key, "import a key (`lotus wallet export` form)")
    imported.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="key file, or - for stdin (default)"
    )
    imported.add_argument(
        "--format", default="hex-lotus", choices=IMPORT_FORMATS, help="key format (hex-lotus)"
    )
    imported.add_argument(
        "--type", default="secp256k1", choices=("secp256k1", "delegated"), help="key type of a hex-eth key"
    )
    imported.add_argument("--as-default", action="store_true", help="make the key the wallet's default")
    exported = command(sub, "export", export_key, "print a key, as `lotus wallet export`")
    exported.add_argument("address", metavar="ADDR")
    exported.add_argument(
        "--format", default="hex-lotus", choices=EXPORT_FORMATS, help="key format (hex-lotus)"
    )
    command(sub, "default", default_address, "print the wallet's default address")
    set_default = command(sub, "set-default", set_default_address, "make an address the wallet's default")
    set_default.add_argument("address", metavar="ADDR")
    delete = command(sub, "delete", delete_key, "remove a key from the wallet (kept aside in the keystore)")
    delete.add_argument("address", metavar="ADDR")


async def new_key(s: "Session", args: argparse.Namespace) -> None:
    address = await s.call("WalletNew", args.type)
    if not s.out.json(address):
        s.out.line(address)


async def list_addresses(s: "Session", args: argparse.Namespace) -> None:
    from cli.client import CliError
    from cli.output import fil

    addresses: list[str] = await s.call("WalletList")
    if s.out.json(addresses):
        return
    if args.addr_only:
        for address in addresses:
            s.out.line(address)
        return
    try:
        default = await s.call("WalletDefaultAddress")
    except CliError:
        default = None  # a wallet with no default key
    columns = ["Address", *(["ID"] if args.id else []), "Balance"]
    columns += [*(["Market(Avail)", "Market(Locked)"] if args.market else []), "Nonce", "Default", "Error"]
    rows = []
    for address in addresses:
        row = {"Address": address, "Default": "X" if address == default else ""}
        try:
            actor = await s.call("StateGetActor", address, [])
            row |= {"Balance": fil(actor["Balance"]), "Nonce": str(actor["Nonce"])}
        except CliError as exc:
            if "actor not found" not in str(exc):
                rows.append(row | {"Error": str(exc)})
                continue
            row |= {"Balance": fil(0), "Nonce": "0"}
        if args.id:
            try:
                row["ID"] = await s.call("StateLookupID", address, [])
            except CliError:
                row["ID"] = "n/a"
        if args.market:
            market = await s.call("StateMarketBalance", address, [])
            row["Market(Avail)"] = fil(int(market["Escrow"]) - int(market["Locked"]))
            row["Market(Locked)"] = fil(market["Locked"])
        rows.append(row)
    if not any(r.get("Error") for r in rows):
        columns.remove("Error")
    s.out.table(columns, [[r.get(c, "") for c in columns] for r in rows], right=("Balance", "Nonce"))


async def balance(s: "Session", args: argparse.Namespace) -> None:
    from cli import values
    from cli.output import fil
    from cli.sync import is_sync_done

    address = values.address(args.address) if args.address else await s.call("WalletDefaultAddress")
    amount = await s.call("WalletBalance", address)
    if s.out.json(amount):
        return
    if int(amount) == 0 and not await is_sync_done(s):
        s.out.line(f"{fil(amount)} (warning: may display 0 if chain sync in progress)")
    else:
        s.out.line(fil(amount))


def _read_key_text(path: str) -> bytes:
    import sys

    from cli.client import CliError

    if path == "-":
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass("Enter private key (not displayed): ").encode()
        return sys.stdin.buffer.read(MAX_KEY_BYTES + 1)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_BYTES:
        raise CliError(f"{path}: more than {MAX_KEY_BYTES} bytes: not a key file")
    return data


def key_info(data: bytes, form: str, key_type: str) -> dict[str, Any]:
    """Lotus KeyInfo JSON ({"Type", "PrivateKey"}) from a key in one of `lotus wallet import`'s forms."""
    import base64

    import orjson

    from cli.client import CliError

    text = data.decode("utf-8", errors="replace").strip()
    try:
        if form == "hex-eth":
            raw = bytes.fromhex(text.removeprefix("0x").removeprefix("0X"))
            if len(raw) != 32:
                raise CliError(f"expected a 32-byte private key, got {len(raw)} bytes")
            return {"Type": key_type, "PrivateKey": base64.b64encode(raw).decode()}
        decoded = orjson.loads(bytes.fromhex(text) if form == "hex-lotus" else text)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise CliError(f"not a key in {form} form: {exc}") from None
    if not isinstance(decoded, dict) or not {"Type", "PrivateKey"} <= decoded.keys():
        raise CliError(f'not a key in {form} form: expected a KeyInfo {{"Type": ..., "PrivateKey": ...}}')
    return decoded


async def import_key(s: "Session", args: argparse.Namespace) -> None:
    info = key_info(_read_key_text(args.file), args.format, args.type)
    address = await s.call("WalletImport", info)
    if args.as_default:
        await s.call("WalletSetDefault", address)
    if not s.out.json(address):
        s.out.line(f"imported key {address} successfully!")


async def export_key(s: "Session", args: argparse.Namespace) -> None:
    import base64

    import orjson

    from cli import values
    from cli.client import CliError

    info = await s.call("WalletExport", values.address(args.address))
    if s.out.json(info):
        return
    if args.format == "hex-eth":
        raw = base64.b64decode(info["PrivateKey"])
        if info["Type"] not in ("secp256k1", "delegated") or len(raw) != 32:
            raise CliError(f"hex-eth takes a 32-byte secp256k1 or delegated key, got a {info['Type']} key")
        s.out.line("0x" + raw.hex())
        return
    encoded = orjson.dumps(info)  # Lotus's json.Marshal(KeyInfo): {"Type":...,"PrivateKey":...}
    s.out.line(encoded.hex() if args.format == "hex-lotus" else encoded.decode())


async def default_address(s: "Session", args: argparse.Namespace) -> None:
    address = await s.call("WalletDefaultAddress")
    if not s.out.json(address):
        s.out.line(address)


async def set_default_address(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    address = values.address(args.address)
    result = await s.call("WalletSetDefault", address)
    if not s.out.json(result):
        s.out.line(f"Default address set to: {address}")


async def delete_key(s: "Session", args: argparse.Namespace) -> None:
    from cli import values

    address = values.address(args.address)
    result = await s.call("WalletDelete", address)
    if not s.out.json(result):
        s.out.line(f"Soft deleted address: {address}")
        s.out.line(
            f"its key is kept aside in the node's keystore as trash-{address}: remove it there for good"
        )
