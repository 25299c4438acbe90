"""The node's wallet: secp256k1, BLS and delegated keys in the keystore, as Lotus's LocalWallet
(lotus chain/wallet/wallet.go).

Keys are stored under `wallet-<address>` (the address written with the node's network prefix), the
default key is a copy stored under `default`, and a deleted key is kept under `trash-<address>`
(Lotus does the same, so that a mistaken WalletDelete can be undone by hand). A key stored under the
other network's prefix (a keystore copied from a mainnet node to a devnet, say) is found too.

The methods are what the RPC methods WalletNew, WalletList, WalletHas, WalletImport, WalletExport,
WalletDelete, WalletDefaultAddress, WalletSetDefault, WalletSign, WalletSignMessage and WalletVerify
call. They are synchronous (a key write is a file write and an fsync); callers on the trio loop may run
them with trio.to_thread.run_sync.
"""

import builtins
import contextlib
import threading
from typing import Final

import structlog

from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.signature import Signature, is_valid
from chain.encoding.errors import DecodeError
from chain.types.address import NETWORKS, Address
from chain.types.message import Message, SignedMessage, sign_message
from node.keystore import (
    BadKeyFile,
    KeyExists,
    KeyInfo,
    KeyNotFound,
    Keystore,
    encode_name,
    keyinfo_from_bytes,
)

WALLET_PREFIX: Final = "wallet-"
TRASH_PREFIX: Final = "trash-"
DEFAULT_KEY: Final = "default"

log = structlog.get_logger("wallet")


class WalletError(Exception):
    """A wallet operation that cannot be done; the message says why (and names the address)."""


def key_from_info(info: KeyInfo, what: str = "KeyInfo") -> PrivateKey:
    """The wallet key a KeyInfo holds; DecodeError for a type or key the wallet cannot use."""
    try:
        key_type = KeyType(info.type)
    except ValueError:
        raise DecodeError(
            f"{what}.Type: {info.type!r} is not a wallet key type (secp256k1, bls or delegated)"
        ) from None
    try:
        return PrivateKey(key_type, info.private_key)
    except DecodeError as exc:
        raise DecodeError(f"{what}.PrivateKey: {exc}") from None


def info_of(key: PrivateKey) -> KeyInfo:
    return KeyInfo(type=key.type.value, private_key=key.data)


def parse_key_text(text: str | bytes) -> PrivateKey:
    """A key as `lotus wallet export` prints it (hex of the KeyInfo JSON, the default hex-lotus format)
    or as KeyInfo JSON itself (json-lotus); DecodeError saying what is wrong."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    raw = raw.strip()
    if raw.startswith(b"{"):
        return key_from_info(keyinfo_from_bytes(raw))
    try:
        decoded = bytes.fromhex(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise DecodeError(
            "not a key: expected the hex that `lotus wallet export` prints, or KeyInfo JSON"
        ) from None
    return key_from_info(keyinfo_from_bytes(decoded))


class Wallet:
    """Wallet keys in a keystore, with the addresses written for one network ("t" or "f")."""

    def __init__(self, keystore: Keystore, network: str = "t") -> None:
        if network not in NETWORKS:
            raise ValueError(f"unknown network prefix {network!r}: expected 'f' or 't'")
        self.keystore = keystore
        self.network = network
        self._keys: dict[Address, PrivateKey] = {}
        self._lock = threading.RLock()

    def _name(self, address: Address, network: str | None = None) -> str:
        return WALLET_PREFIX + address.to_string(network or self.network)

    # finding keys ---------------------------------------------------------------------------------
    def _find(self, address: Address) -> PrivateKey | None:
        """The key for address (cached, else read from the keystore under either prefix)."""
        if not isinstance(address, Address):
            raise TypeError(f"expected an Address, got {type(address).__name__}")
        with self._lock:
            found = self._keys.get(address)
            if found is not None:
                return found
            for network in (self.network, *(n for n in NETWORKS if n != self.network)):
                name = self._name(address, network)
                try:
                    info = self.keystore.get(name)
                except KeyNotFound:
                    continue
                except BadKeyFile as exc:
                    raise WalletError(
                        f"the key of {address.to_string(self.network)} is unusable: {exc}"
                    ) from None
                key = self._key_of(info, name)
                if Address.of_key(key) != address:
                    raise WalletError(
                        f"keystore entry {name!r} holds the key of "
                        f"{Address.of_key(key).to_string(self.network)}, not of {name[len(WALLET_PREFIX) :]}"
                    )
                self._keys[address] = key
                return key
            return None

    @staticmethod
    def _key_of(info: KeyInfo, name: str) -> PrivateKey:
        try:
            return key_from_info(info, name)
        except DecodeError as exc:
            raise WalletError(f"keystore entry {name!r} is not a usable wallet key: {exc}") from None

    def key(self, address: Address) -> PrivateKey:
        """The private key of address; WalletError if the wallet does not hold it."""
        found = self._find(address)
        if found is None:
            raise WalletError(f"key not found for {address.to_string(self.network)}")
        return found

    def has(self, address: Address) -> bool:
        """WalletHas."""
        return address.is_key_address() and self._find(address) is not None

    def list(self) -> list[Address]:
        """WalletList: every wallet address, sorted by its string form as Lotus sorts them. Entries whose
        name is not an address are logged and skipped."""
        seen: set[Address] = set()
        for name in self.keystore.list():
            if not name.startswith(WALLET_PREFIX):
                continue
            try:
                address = Address.parse(name[len(WALLET_PREFIX) :])
            except DecodeError as exc:
                log.warning("keystore entry is not named after an address", name=name, reason=str(exc))
                continue
            seen.add(address)
        return sorted(seen, key=lambda a: a.to_string(self.network))

    def load_all(self) -> "builtins.list[BadKeyFile]":
        """Read every wallet key now (a node does at start): the keys that load are ready to sign, each
        one that does not is logged and returned as a BadKeyFile naming its file; none stops the others."""
        listing = self.keystore.scan()
        problems = list(listing.problems)
        for bad in problems:
            log.warning("keystore file skipped", file=bad.file, reason=bad.reason)
        for name in listing.names:
            if not name.startswith(WALLET_PREFIX):
                continue
            file = encode_name(name)
            try:
                address = Address.parse(name[len(WALLET_PREFIX) :])
                self.key(address)
            except (DecodeError, WalletError) as exc:
                problems.append(BadKeyFile(file, str(exc)))
                log.warning("wallet key not loaded", file=file, name=name, reason=str(exc))
        return problems

    # adding and removing keys ---------------------------------------------------------------------
    def new(self, key_type: KeyType | str) -> Address:
        """WalletNew: a fresh key; the first key of a wallet without a default becomes the default."""
        try:
            kind = KeyType(key_type)
        except ValueError:
            raise WalletError(
                f"unknown key type {key_type!r}: expected secp256k1, bls or delegated"
            ) from None
        key = PrivateKey.generate(kind)
        address = self._store(key)
        with self._lock:
            if not self.keystore.has(DEFAULT_KEY):
                self.keystore.put(DEFAULT_KEY, info_of(key), overwrite=True)
        log.info("wallet key created", address=address.to_string(self.network), type=kind.value)
        return address

    def import_key(self, key: PrivateKey | KeyInfo) -> Address:
        """WalletImport: store a key; WalletError if the wallet already holds it (as Lotus)."""
        if isinstance(key, KeyInfo):
            try:
                key = key_from_info(key)
            except DecodeError as exc:
                raise WalletError(f"cannot import: {exc}") from None
        address = self._store(key)
        log.info("wallet key imported", address=address.to_string(self.network), type=key.type.value)
        return address

    def ensure_key(self, key: PrivateKey) -> Address:
        """Import key unless the wallet holds it already (for keys the node itself provides, such as the
        devnet accounts); its address either way."""
        address = Address.of_key(key)
        if self._find(address) is None:
            self._store(key)
        return address

    def _store(self, key: PrivateKey) -> Address:
        address = Address.of_key(key)
        with self._lock:
            if self._find(address) is not None:
                raise WalletError(f"the wallet already holds the key of {address.to_string(self.network)}")
            try:
                self.keystore.put(self._name(address), info_of(key))
            except KeyExists as exc:
                raise WalletError(str(exc)) from None
            self._keys[address] = key
        return address

    def export(self, address: Address) -> KeyInfo:
        """WalletExport."""
        return info_of(self.key(address))

    def delete(self, address: Address) -> None:
        """WalletDelete: the key moves to `trash-<address>`; the default is unset if it was this key.
        Deleting a key the wallet does not hold does nothing (as Lotus)."""
        with self._lock:
            key = self._find(address)
            if key is None:
                return
            self.keystore.put(TRASH_PREFIX + address.to_string(self.network), info_of(key), overwrite=True)
            for network in NETWORKS:
                with contextlib.suppress(KeyNotFound):
                    self.keystore.delete(self._name(address, network))
            self._keys.pop(address, None)
            if self._default_address() == address:
                self.keystore.delete(DEFAULT_KEY)
        log.info("wallet key deleted", address=address.to_string(self.network))

    # the default address --------------------------------------------------------------------------
    def _default_address(self) -> Address | None:
        try:
            info = self.keystore.get(DEFAULT_KEY)
        except KeyNotFound:
            return None
        except BadKeyFile as exc:
            raise WalletError(f"the default key is unusable: {exc}") from None
        return Address.of_key(self._key_of(info, DEFAULT_KEY))

    def default(self) -> Address | None:
        """WalletDefaultAddress: None when no default is set."""
        with self._lock:
            return self._default_address()

    def set_default(self, address: Address) -> None:
        """WalletSetDefault: address must be in the wallet."""
        with self._lock:
            key = self.key(address)
            self.keystore.put(DEFAULT_KEY, info_of(key), overwrite=True)

    # signing --------------------------------------------------------------------------------------
    def sign(self, address: Address, data: bytes) -> Signature:
        """WalletSign: sign data with address's key (see PrivateKey.sign for what is hashed)."""
        return self.key(address).sign(bytes(data))

    def sign_message(self, message: Message, signer: Address | None = None) -> SignedMessage:
        """WalletSignMessage: sign message with the key of its sender. A sender given as an ID address
        must be resolved to its key address by the caller and passed as signer."""
        address = signer if signer is not None else message.from_
        if not address.is_key_address():
            raise WalletError(
                f"cannot sign for {address.to_string(self.network)}: resolve it to its key address first"
            )
        return sign_message(message, self.key(address))

    @staticmethod
    def verify(address: Address, data: bytes, signature: Signature) -> bool:
        """WalletVerify: whether signature is address's key's signature of data (no key needed)."""
        return is_valid(signature, address, bytes(data))
