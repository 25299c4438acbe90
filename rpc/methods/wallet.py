"""The Wallet* methods over the node's wallet (node/wallet.py), with Lotus's permissions
(lotus api/api_full.go `//perm:`): balance, verify and address validation are read; new, has, list and
the default address write; signing sign; import, export and delete admin.

An ID address given to WalletSign or WalletSignMessage is resolved to its account's key address in the
state after the head, as Lotus does. Keystore writes (an fsync each) run in a worker thread.
"""

from chain.crypto.signature import Signature
from chain.encoding.errors import DecodeError
from chain.encoding.schema import BigInt, Bytes
from chain.stmgr.actors import ActorNotFound
from chain.types.address import Address, Protocol
from chain.types.message import Message, SignedMessage
from node.fullnode import FullNode
from node.keystore import KeyInfo
from node.wallet import WalletError
from rpc.errors import RpcError, answer_errors
from rpc.registry import ADMIN, READ, SIGN, WRITE, method


async def _key_address(node: FullNode, address: Address) -> Address:
    """The key address that signs for address (Lotus ResolveToDeterministicAddress)."""
    if address.protocol != Protocol.ID:
        return address
    key = await node.run_sync(node.state.resolve_to_key, address, node.chain.head())
    if key is None:
        raise RpcError(f"failed to resolve ID address: {address} is not an account with a key")
    return key


@method("WalletNew", perm=WRITE)
async def wallet_new(node: FullNode, key_type: str) -> Address:
    """A new key of this type (secp256k1, bls or delegated) in the wallet; its address. The wallet's
    first key becomes the default."""
    with answer_errors(WalletError):
        return await node.run_sync(node.wallet.new, key_type)


@method("WalletHas", perm=WRITE)
async def wallet_has(node: FullNode, address: Address) -> bool:
    """Whether the wallet holds the key of this address."""
    with answer_errors(WalletError):
        return await node.run_sync(node.wallet.has, address)


@method("WalletList", perm=WRITE)
async def wallet_list(node: FullNode) -> tuple[Address, ...]:
    """The addresses of the wallet's keys."""
    return tuple(await node.run_sync(node.wallet.list))


@method("WalletBalance", perm=READ)
async def wallet_balance(node: FullNode, address: Address) -> BigInt:
    """The balance of an address at the head (0 for an address with no actor)."""

    def balance() -> int:
        try:
            return node.state.get_actor(address, node.chain.head()).balance
        except ActorNotFound:
            return 0

    return await node.run_sync(balance)


@method("WalletSign", perm=SIGN)
async def wallet_sign(node: FullNode, address: Address, data: Bytes) -> Signature:
    """Sign data with the key of address."""
    key = await _key_address(node, address)
    with answer_errors(WalletError, prefix=f"signing using key '{address}'"):
        return await node.run_sync(node.wallet.sign, key, data)


@method("WalletSignMessage", perm=SIGN)
async def wallet_sign_message(node: FullNode, address: Address, message: Message) -> SignedMessage:
    """Sign a message (its CID) with the key of address."""
    key = await _key_address(node, address)
    with answer_errors(WalletError, prefix="failed to sign message"):
        return await node.run_sync(node.wallet.sign_message, message, key)


@method("WalletVerify", perm=READ)
async def wallet_verify(node: FullNode, address: Address, data: Bytes, signature: Signature) -> bool:
    """Whether signature is the signature of data by the key of address (no key needed)."""
    return await node.run_sync(node.wallet.verify, address, data, signature)


@method("WalletDefaultAddress", perm=WRITE)
async def wallet_default_address(node: FullNode) -> Address:
    """The wallet's default address."""
    with answer_errors(WalletError, prefix="failed to get default key"):
        found = await node.run_sync(node.wallet.default)
    if found is None:
        raise RpcError("failed to get default key: no default key is set")
    return found


@method("WalletSetDefault", perm=WRITE)
async def wallet_set_default(node: FullNode, address: Address) -> None:
    """Make an address of the wallet its default."""
    with answer_errors(WalletError, prefix="failed to set default key"):
        await node.run_sync(node.wallet.set_default, address)


@method("WalletExport", perm=ADMIN)
async def wallet_export(node: FullNode, address: Address) -> KeyInfo:
    """The private key of an address, as Lotus KeyInfo."""
    with answer_errors(WalletError, prefix="failed to find key to export"):
        return await node.run_sync(node.wallet.export, address)


@method("WalletImport", perm=ADMIN)
async def wallet_import(node: FullNode, key: KeyInfo) -> Address:
    """Add a key (Lotus KeyInfo) to the wallet; its address."""
    with answer_errors(WalletError):
        return await node.run_sync(node.wallet.import_key, key)


@method("WalletDelete", perm=ADMIN)
async def wallet_delete(node: FullNode, address: Address) -> None:
    """Remove a key from the wallet (kept aside in the keystore as trash-<address>)."""
    with answer_errors(WalletError, prefix=f"failed to delete key {address}"):
        await node.run_sync(node.wallet.delete, address)


@method("WalletValidateAddress", perm=READ)
async def wallet_validate_address(node: FullNode, address: str) -> Address:
    """The address a string spells, if it is a valid Filecoin address."""
    with answer_errors(DecodeError):
        return Address.parse(address)
