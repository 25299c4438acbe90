"""The wallet: Lotus's keystore names and behaviours (first key default, trash on delete, either network
prefix), import of `lotus wallet export` hex and KeyInfo JSON, signing and verifying, and a corrupt key
file that stops only itself."""

import dataclasses
import os
import re
import stat
from pathlib import Path

import pytest

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import SigType, verify
from chain.encoding.errors import DecodeError
from chain.types.address import Address, Protocol
from chain.types.message import Message
from node.keystore import KeyInfo, Keystore, encode_name
from node.wallet import DEFAULT_KEY, Wallet, WalletError, key_from_info, parse_key_text

SECP = PrivateKey.derive(KeyType.SECP256K1, b"wallet-test-secp")
BLS = PrivateKey.derive(KeyType.BLS, b"wallet-test-bls")


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet(Keystore.create(tmp_path / "keystore"), "t")


def names(wallet: Wallet) -> list[str]:
    return sorted(wallet.keystore.list())


@pytest.mark.parametrize(
    ("key_type", "protocol"),
    [("secp256k1", Protocol.SECP256K1), ("bls", Protocol.BLS), ("delegated", Protocol.DELEGATED)],
)
def test_new_keys_of_each_type(wallet: Wallet, key_type: str, protocol: Protocol) -> None:
    address = wallet.new(key_type)
    assert address.protocol == protocol
    assert wallet.has(address)
    assert wallet.list() == [address]
    assert Address.of_key(wallet.key(address)) == address
    assert names(wallet) == [DEFAULT_KEY, f"wallet-{address.to_string('t')}"]
    file = wallet.keystore.directory / encode_name(f"wallet-{address.to_string('t')}")
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_first_key_becomes_the_default_and_later_ones_do_not(wallet: Wallet) -> None:
    assert wallet.default() is None
    first = wallet.new(KeyType.SECP256K1)
    second = wallet.new(KeyType.BLS)
    assert wallet.default() == first
    wallet.set_default(second)
    assert wallet.default() == second
    with pytest.raises(WalletError, match="key not found for t1"):
        wallet.set_default(Address.of_key(SECP))
    assert wallet.list() == sorted([first, second], key=lambda a: a.to_string("t"))


def test_unknown_type(wallet: Wallet) -> None:
    with pytest.raises(WalletError, match="unknown key type 'ed25519': expected secp256k1, bls or delegated"):
        wallet.new("ed25519")


def test_import_export_and_lotus_text_forms(wallet: Wallet) -> None:
    address = wallet.import_key(SECP)
    assert address == Address.of_key(SECP)
    assert wallet.export(address) == KeyInfo(type="secp256k1", private_key=SECP.data)
    with pytest.raises(WalletError, match=f"already holds the key of {address.to_string('t')}"):
        wallet.import_key(SECP)
    # `lotus wallet export` hex, with the newline a shell pipe leaves
    assert parse_key_text(BLS.to_lotus_export() + "\n") == BLS
    assert parse_key_text(BLS.to_keyinfo_json()) == BLS
    bls = wallet.import_key(KeyInfo(type="bls", private_key=BLS.data))
    assert wallet.export(bls).private_key == BLS.data
    assert wallet.default() is None  # import does not set a default (as Lotus)
    assert wallet.ensure_key(SECP) == address  # already there: no error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zz", "not a key: expected the hex that `lotus wallet export` prints, or KeyInfo JSON"),
        ("7b7d", "KeyInfo: missing field 'Type'"),
        ('{"Type":"ed25519","PrivateKey":"AAAA"}', "KeyInfo.Type: 'ed25519' is not a wallet key type"),
        ('{"Type":"secp256k1","PrivateKey":"AAAA"}', "KeyInfo.PrivateKey: secp256k1 private key must be 32"),
        ('{"Type":"bls","PrivateKey":"' + "A" * 43 + '="}', "KeyInfo.PrivateKey: BLS private key scalar"),
        ("{not json", "KeyInfo: not valid JSON"),
    ],
)  # fmt: skip
def test_bad_key_text(text: str, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_key_text(text)
    assert message in str(caught.value)


def test_import_of_a_bad_keyinfo(wallet: Wallet) -> None:
    with pytest.raises(
        WalletError, match=re.escape("cannot import: KeyInfo.Type: 'jwt-hmac-secret' is not a wallet key")
    ):
        wallet.import_key(KeyInfo(type="jwt-hmac-secret", private_key=b"x" * 32))
    assert wallet.list() == []


def test_delete_moves_the_key_to_trash_and_unsets_the_default(wallet: Wallet) -> None:
    address = wallet.new(KeyType.SECP256K1)
    other = wallet.import_key(BLS)
    wallet.delete(address)
    assert not wallet.has(address) and wallet.list() == [other]
    assert wallet.default() is None
    trash = f"trash-{address.to_string('t')}"
    assert trash in names(wallet)
    assert key_from_info(wallet.keystore.get(trash)) is not None
    wallet.delete(address)  # deleting a key that is not there does nothing, as Lotus
    wallet.set_default(other)
    wallet.delete(Address.of_key(SECP))
    assert wallet.default() == other


def test_sign_and_verify(wallet: Wallet) -> None:
    secp = wallet.import_key(SECP)
    bls = wallet.import_key(BLS)
    for address, sig_type in ((secp, SigType.SECP256K1), (bls, SigType.BLS)):
        signature = wallet.sign(address, b"some bytes")
        assert signature.type == sig_type
        verify(signature, address, b"some bytes")
        assert Wallet.verify(address, b"some bytes", signature)
        assert not Wallet.verify(address, b"other bytes", signature)
    assert not Wallet.verify(bls, b"some bytes", wallet.sign(secp, b"some bytes"))
    with pytest.raises(WalletError, match="key not found"):
        wallet.sign(Address.of_key(PrivateKey.derive(KeyType.BLS, b"nobody")), b"x")


def test_sign_message(wallet: Wallet) -> None:
    sender = wallet.import_key(SECP)
    message = Message(
        to=Address.new_id(1000),
        from_=sender,
        nonce=3,
        value=10**18,
        gas_limit=1_000_000,
        gas_fee_cap=10**9,
        gas_premium=10**8,
        method=0,
        params=b"",
    )
    signed = wallet.sign_message(message)
    assert signed.message == message
    signed.verify_signature(sender)
    by_id = dataclasses.replace(message, from_=Address.new_id(100))
    with pytest.raises(WalletError, match="cannot sign for t0100: resolve it to its key address first"):
        wallet.sign_message(by_id)
    wallet.sign_message(by_id, signer=sender).verify_signature(sender)


def test_a_key_stored_under_the_other_network_prefix_is_found(tmp_path: Path) -> None:
    store = Keystore.create(tmp_path / "keystore")
    address = Wallet(store, "f").import_key(SECP)  # stored as wallet-f1...
    devnet = Wallet(store, "t")
    assert devnet.has(address) and devnet.list() == [address]
    assert devnet.sign(address, b"x").type == SigType.SECP256K1


def test_has_is_false_for_non_key_addresses(wallet: Wallet) -> None:
    assert not wallet.has(Address.new_id(1000))


def test_a_corrupt_key_file_stops_only_itself(wallet: Wallet) -> None:
    good = wallet.import_key(SECP)
    bad = wallet.import_key(BLS)
    third = wallet.new(KeyType.SECP256K1)
    bad_file = wallet.keystore.directory / encode_name(f"wallet-{bad.to_string('t')}")
    bad_file.write_bytes(b'{"Type":"bls","PrivateKey":"trunc')
    fresh = Wallet(wallet.keystore, "t")  # a restarted node: nothing cached

    problems = fresh.load_all()
    assert [p.file for p in problems] == [bad_file.name]
    assert "KeyInfo: not valid JSON" in problems[0].reason
    assert fresh.sign(good, b"x") and fresh.sign(third, b"x")
    with pytest.raises(
        WalletError, match=f"the key of {bad.to_string('t')} is unusable: keystore file {bad_file.name}"
    ):
        fresh.key(bad)
    assert bad in fresh.list()  # still listed (as Lotus lists names), reported when used


def test_a_key_file_holding_another_address_key_is_refused(wallet: Wallet) -> None:
    address = Address.of_key(SECP)
    wallet.keystore.put(f"wallet-{address.to_string('t')}", KeyInfo(type="bls", private_key=BLS.data))
    with pytest.raises(WalletError, match=f"holds the key of {Address.of_key(BLS).to_string('t')}"):
        wallet.key(address)
    problems = wallet.load_all()
    assert len(problems) == 1 and problems[0].file == encode_name(f"wallet-{address.to_string('t')}")


def test_a_wallet_file_with_loose_permissions_is_refused(wallet: Wallet) -> None:
    address = wallet.import_key(SECP)
    os.chmod(wallet.keystore.directory / encode_name(f"wallet-{address.to_string('t')}"), 0o640)
    with pytest.raises(WalletError, match="permissions 0o640 are too open"):
        Wallet(wallet.keystore, "t").key(address)
