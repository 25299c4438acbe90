"""The Wallet* methods over HTTP against a node's wallet: keys, balances, signatures, import and export,
with Lotus's permissions (sign for signing, admin for keys leaving or entering the wallet)."""

import base64

import pytest

from chain.crypto.signature import Signature, verify
from chain.types.address import Address
from chain.types.message import SignedMessage
from rpc.client import HttpClient, RpcCallError
from rpc.errors import GENERIC_ERROR
from tests.consensus.devchain import ALICE, BOB, CAROL
from tests.rpc.chain_node import Served, transfer
from tests.rpc.conftest import chain_token

T = "t"
ALICE_ADDRESS = Address.of_key(ALICE)
CAROL_ADDRESS = Address.of_key(CAROL)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_list_new_has_and_balance(served: Served) -> None:
    node = served.node
    head = node.chain.head()
    async with (
        HttpClient(served.url()) as reader,
        HttpClient(served.url(), token=chain_token("write")) as api,
    ):
        for method, params in (("WalletList", ()), ("WalletNew", ("bls",)), ("WalletHas", (T + "01",))):
            with pytest.raises(RpcCallError, match=rf"'{method}' \(need 'write'\)"):
                await reader.call(method, *params)
        held = [a.to_string(T) for a in node.wallet.list()]
        assert await api.call("WalletList") == held == sorted(held)
        assert {ALICE_ADDRESS.to_string(T), Address.of_key(BOB).to_string(T)} <= set(held)
        assert CAROL_ADDRESS.to_string(T) not in held
        made = await api.call("WalletNew", "bls")
        assert made.startswith("t3") and node.wallet.has(Address.parse(made))
        secp = await api.call("WalletNew", "secp256k1")
        assert secp.startswith("t1")
        assert set(await api.call("WalletList")) == {*held, made, secp}
        assert await api.call("WalletHas", made) is True
        assert await api.call("WalletHas", CAROL_ADDRESS.to_string(T)) is False
        with pytest.raises(RpcCallError, match="unknown key type 'rsa'"):
            await api.call("WalletNew", "rsa")

        for address in (ALICE_ADDRESS, CAROL_ADDRESS):
            balance = node.state.get_actor(address, head).balance
            assert await reader.call("WalletBalance", address.to_string(T)) == str(balance)
            assert balance > 0
        # an address with no actor has nothing
        assert await reader.call("WalletBalance", made) == "0"


async def test_default_address(served: Served) -> None:
    async with HttpClient(served.url(), token=chain_token("write")) as api:
        with pytest.raises(RpcCallError, match="failed to get default key: no default key is set"):
            await api.call("WalletDefaultAddress")
        assert await api.call("WalletSetDefault", ALICE_ADDRESS.to_string(T)) is None
        assert await api.call("WalletDefaultAddress") == ALICE_ADDRESS.to_string(T)
        with pytest.raises(RpcCallError, match="failed to set default key: key not found"):
            await api.call("WalletSetDefault", CAROL_ADDRESS.to_string(T))
    assert served.node.wallet.default() == ALICE_ADDRESS


async def test_sign_and_verify(served: Served) -> None:
    node = served.node
    alice_id = node.state.lookup_id(ALICE_ADDRESS, node.chain.head())
    data = b"what alice says"
    async with (
        HttpClient(served.url(), token=chain_token("write")) as writer,
        HttpClient(served.url(), token=chain_token("sign")) as signer,
        HttpClient(served.url()) as reader,
    ):
        with pytest.raises(
            RpcCallError, match=r"missing permission to invoke 'WalletSign' \(need 'sign'\)"
        ) as err:
            await writer.call("WalletSign", ALICE_ADDRESS.to_string(T), b64(data))
        assert err.value.code == GENERIC_ERROR
        got = await signer.call("WalletSign", ALICE_ADDRESS.to_string(T), b64(data))
        assert got["Type"] == 1
        signature = Signature.from_json(got)
        verify(signature, ALICE_ADDRESS, data)
        assert signature == node.wallet.sign(ALICE_ADDRESS, data)
        # an ID address signs with its account's key
        assert await signer.call("WalletSign", alice_id.to_string(T), b64(data)) == got
        bob = await signer.call("WalletSign", Address.of_key(BOB).to_string(T), b64(data))
        assert bob["Type"] == 2
        with pytest.raises(RpcCallError, match="key not found"):
            await signer.call("WalletSign", CAROL_ADDRESS.to_string(T), b64(data))
        with pytest.raises(RpcCallError, match="failed to resolve ID address"):
            await signer.call("WalletSign", "t0999999", b64(data))

        assert await reader.call("WalletVerify", ALICE_ADDRESS.to_string(T), b64(data), got) is True
        assert await reader.call("WalletVerify", ALICE_ADDRESS.to_string(T), b64(b"other"), got) is False
        assert await reader.call("WalletVerify", CAROL_ADDRESS.to_string(T), b64(data), got) is False

        unsigned = transfer(ALICE, node.mpool.get_nonce(ALICE_ADDRESS), CAROL_ADDRESS).message
        answer = await signer.call("WalletSignMessage", ALICE_ADDRESS.to_string(T), unsigned.to_json(T))
        signed = SignedMessage.from_json(answer)
        assert signed.message == unsigned and answer["CID"] == {"/": str(signed.cid())}
        verify(signed.signature, ALICE_ADDRESS, unsigned.signing_bytes())
        with pytest.raises(RpcCallError, match="need 'sign'"):
            await writer.call("WalletSignMessage", ALICE_ADDRESS.to_string(T), unsigned.to_json(T))
        # what it signed is accepted by the pool
        assert await writer.call("MpoolPush", answer) == {"/": str(signed.cid())}


async def test_export_import_delete_are_admin(served: Served) -> None:
    node = served.node
    carol_info = {"Type": "secp256k1", "PrivateKey": b64(CAROL.data)}
    async with (
        HttpClient(served.url(), token=chain_token("sign")) as signer,
        HttpClient(served.url(), token=chain_token("admin")) as admin,
    ):
        for method, params in (
            ("WalletExport", (ALICE_ADDRESS.to_string(T),)),
            ("WalletImport", (carol_info,)),
            ("WalletDelete", (ALICE_ADDRESS.to_string(T),)),
        ):
            with pytest.raises(RpcCallError, match=rf"'{method}' \(need 'admin'\)"):
                await signer.call(method, *params)
        exported = await admin.call("WalletExport", ALICE_ADDRESS.to_string(T))
        assert exported == {"Type": "secp256k1", "PrivateKey": b64(ALICE.data)}
        bob = await admin.call("WalletExport", Address.of_key(BOB).to_string(T))
        assert bob == {"Type": "bls", "PrivateKey": b64(BOB.data)}
        with pytest.raises(RpcCallError, match="failed to find key to export: key not found"):
            await admin.call("WalletExport", CAROL_ADDRESS.to_string(T))

        assert await admin.call("WalletImport", carol_info) == CAROL_ADDRESS.to_string(T)
        assert node.wallet.has(CAROL_ADDRESS)
        with pytest.raises(RpcCallError, match="already holds the key"):
            await admin.call("WalletImport", carol_info)
        with pytest.raises(RpcCallError, match="not a wallet key type"):
            await admin.call("WalletImport", {"Type": "rsa", "PrivateKey": b64(b"x" * 32)})

        assert await admin.call("WalletDelete", CAROL_ADDRESS.to_string(T)) is None
        assert await admin.call("WalletHas", CAROL_ADDRESS.to_string(T)) is False
        # the deleted key comes back by import
        assert await admin.call("WalletImport", carol_info) == CAROL_ADDRESS.to_string(T)


async def test_validate_address(served: Served) -> None:
    async with HttpClient(served.url()) as api:
        assert await api.call("WalletValidateAddress", "t01000") == "t01000"
        # either network's prefix is an address; results are written with this network's
        assert await api.call("WalletValidateAddress", "f01000") == "t01000"
        alice = ALICE_ADDRESS.to_string("f")
        assert await api.call("WalletValidateAddress", alice) == ALICE_ADDRESS.to_string(T)
        for bad in ("bogus", "t1abc", "", "x01000"):
            with pytest.raises(RpcCallError) as err:
                await api.call("WalletValidateAddress", bad)
            assert err.value.code == GENERIC_ERROR and err.value.message
