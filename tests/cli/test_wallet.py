"""`filpy wallet ...` against a real node over JSON-RPC: tables in Lotus's shape with FIL amounts, `--json`
equal to what the node answers the same call, keys moving through export and import, and refusals as
one-line messages with status 1."""

from pathlib import Path

from chain.crypto.keys import KeyType, PrivateKey
from chain.types.address import Address
from chain.types.fil import format_fil
from tests.cli.client_kit import Filpy, error_line
from tests.cli.conftest import Node
from tests.rpc.chain_node import ALICE_ADDR, BOB_ADDR, CAROL_ADDR, miner_address


async def test_list_shows_each_address_with_its_balance_nonce_and_default(served: Node, filpy: Filpy) -> None:
    alice = str(ALICE_ADDR)
    assert (await filpy("wallet", "set-default", alice)).out == f"Default address set to: {alice}\n"
    ran = await filpy("wallet", "list")
    assert ran.code == 0
    header, *rows = ran.table()
    assert header == ["Address", "Balance", "Nonce", "Default"]
    by_address = {row[0]: row[1:] for row in rows}
    async with served.api() as api:
        listed = await api.call("WalletList")
        assert set(by_address) == set(listed)
        for address in listed:
            actor = await api.call("StateGetActor", address, [])
            expected = [format_fil(int(actor["Balance"])), str(actor["Nonce"])]
            assert by_address[address][:2] == expected
        assert by_address[alice] == [*by_address[alice][:2], "X"]
        assert (await filpy("wallet", "list", "--json")).json() == listed
    plain = await filpy("wallet", "list", "--addr-only")
    assert plain.lines == listed


async def test_list_with_ids_and_market_balances(served: Node, filpy: Filpy) -> None:
    ran = await filpy("wallet", "list", "--id", "--market")
    header, *rows = ran.table()
    assert header == ["Address", "ID", "Balance", "Market(Avail)", "Market(Locked)", "Nonce", "Default"]
    async with served.api() as api:
        for row in rows:
            assert row[1] == await api.call("StateLookupID", row[0], [])
            assert row[3:5] == ["0 FIL", "0 FIL"]  # nobody has escrowed funds on this chain


async def test_balance_of_an_address_and_of_the_default(served: Node, filpy: Filpy) -> None:
    async with served.api() as api:
        expected = await api.call("WalletBalance", str(CAROL_ADDR))
    ran = await filpy("wallet", "balance", str(CAROL_ADDR))
    assert ran.out == f"{format_fil(int(expected))}\n"
    assert (await filpy("wallet", "balance", str(CAROL_ADDR), "--json")).json() == expected
    await filpy("wallet", "set-default", str(BOB_ADDR))
    async with served.api() as api:
        bob = await api.call("WalletBalance", str(BOB_ADDR))
    assert (await filpy("wallet", "balance")).out == f"{format_fil(int(bob))}\n"


async def test_an_empty_balance_warns_while_the_node_is_behind(filpy: Filpy) -> None:
    # The test chain's blocks carry 2023 timestamps: the node is far behind the clock, not in sync.
    fresh = (await filpy("wallet", "new", "bls")).out.strip()
    ran = await filpy("wallet", "balance", fresh)
    assert ran.out == "0 FIL (warning: may display 0 if chain sync in progress)\n"


async def test_new_keys_of_each_type(served: Node, filpy: Filpy) -> None:
    made = {}
    for key_type, protocol in (("secp256k1", "1"), ("bls", "3")):
        ran = await filpy("wallet", "new", key_type)
        made[key_type] = ran.out.strip()
        assert made[key_type].startswith(f"t{protocol}")
    default = (await filpy("wallet", "new")).out.strip()
    assert default.startswith("t1")
    as_json = (await filpy("wallet", "new", "bls", "--json")).json()
    async with served.api() as api:
        listed = await api.call("WalletList")
    assert {*made.values(), default, as_json} <= set(listed)


async def test_export_then_import_moves_a_key(served: Node, filpy: Filpy, tmp_path: Path) -> None:
    made = (await filpy("wallet", "new", "bls")).out.strip()
    exported = (await filpy("wallet", "export", made)).out.strip()
    async with served.api() as api:
        info = await api.call("WalletExport", made)
    assert bytes.fromhex(exported) == b'{"Type":"bls","PrivateKey":"%s"}' % info["PrivateKey"].encode()
    assert (await filpy("wallet", "export", made, "--json")).json() == info
    assert (await filpy("wallet", "export", made, "--format", "json-lotus")).json() == info

    deleted = await filpy("wallet", "delete", made)
    assert deleted.lines[0] == f"Soft deleted address: {made}"
    assert made not in (await filpy("wallet", "list", "--addr-only")).lines

    key_file = tmp_path / "key.hex"
    key_file.write_text(exported + "\n")
    ran = await filpy("wallet", "import", str(key_file), "--as-default")
    assert ran.out == f"imported key {made} successfully!\n"
    assert (await filpy("wallet", "default")).out == f"{made}\n"
    assert made in (await filpy("wallet", "list", "--addr-only")).lines


async def test_import_of_a_raw_secp256k1_key(filpy: Filpy, tmp_path: Path) -> None:
    key = PrivateKey.generate(KeyType.SECP256K1)
    path = tmp_path / "eth.hex"
    path.write_text("0x" + key.data.hex())
    ran = await filpy("wallet", "import", str(path), "--format", "hex-eth", "--type", "secp256k1")
    assert ran.out == f"imported key {Address.of_key(key)} successfully!\n"


async def test_refusals_are_messages(served: Node, filpy: Filpy, tmp_path: Path) -> None:
    bad = await filpy("wallet", "balance", "t1notanaddress")
    assert error_line(bad, "wallet balance").startswith("failed to parse address 't1notanaddress': ")
    # A miner's address is no key of the wallet: the node refuses, in its words.
    miner = str(miner_address())
    said = error_line(await filpy("wallet", "export", miner), "wallet export")
    assert said == f"failed to find key to export: key not found for {miner}"
    garbage = tmp_path / "garbage"
    garbage.write_text("not hex at all")
    refused = error_line(await filpy("wallet", "import", str(garbage)), "wallet import")
    assert refused.startswith("not a key in hex-lotus form")
    missing = error_line(await filpy("wallet", "import", str(tmp_path / "nope")), "wallet import")
    assert missing == f"{tmp_path / 'nope'}: No such file or directory"
    unknown = await filpy("wallet", "set-default", miner)
    assert (
        error_line(unknown, "wallet set-default") == f"failed to set default key: key not found for {miner}"
    )
