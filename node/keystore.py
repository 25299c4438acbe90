"""The keystore: named keys in a directory, in Lotus's format (lotus node/repo/fsrepo.go).

One file per key. Its name is the key's name in base32 (RFC 4648 alphabet, upper case, no padding:
go-base32's RawStdEncoding), so `default` is stored as `MRSWMYLVNR2A`; its content is the KeyInfo as
Lotus marshals it, `{"Type":"secp256k1","PrivateKey":"<base64>"}`. A Lotus keystore directory can be
copied into a filpy repo and back.

Names in use: `wallet-<address>` (wallet keys, node/wallet.py), `default` (a copy of the default
wallet key), `trash-<address>` (keys removed with WalletDelete, kept as Lotus keeps them),
`auth-jwt-private` (the RPC's HS256 secret, type `jwt-hmac-secret`) and `libp2p-host` (the node's
libp2p identity).

The directory is 0700 and every file 0600; files are written atomically (node/atomic.py), so a crash
leaves the old key or the new one, never half a key. A file that cannot be read (bad name, bad JSON,
permissions open to others) is reported by its file name and skipped: the other keys still load.
"""

import base64
import binascii
import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from chain.encoding.errors import DecodeError
from chain.encoding.schema import Bytes, LotusJson
from node.atomic import write_atomic

KEY_FILE_MODE: Final = 0o600
KEYSTORE_DIR_MODE: Final = 0o700
MAX_KEY_FILE_BYTES: Final = 64 << 10
MAX_NAME_BYTES: Final = 150  # base32 of it stays under the 255-byte file name limit

log = structlog.get_logger("keystore")


class KeyInfo(LotusJson):
    """Lotus's types.KeyInfo: what a keystore file holds and what WalletExport/WalletImport carry."""

    type: str
    private_key: Bytes


class KeystoreError(Exception):
    """A keystore operation that failed; the message names the key (and file) and the reason."""


class KeyNotFound(KeystoreError):
    pass


class KeyExists(KeystoreError):
    pass


class BadKeyFile(KeystoreError):
    """A key file that cannot be used; the others are unaffected."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"keystore file {file}: {reason}")
        self.file = file
        self.reason = reason


def encode_name(name: str) -> str:
    """A key's file name: base32 (std alphabet, unpadded) of its UTF-8 name, as Lotus."""
    return base64.b32encode(name.encode("utf-8")).decode("ascii").rstrip("=")


def decode_name(file_name: str) -> str:
    """The key name a file stands for; ValueError for a name Lotus would not have written."""
    if not file_name:
        raise ValueError("not a base32-encoded key name (empty)")
    padded = file_name + "=" * (-len(file_name) % 8)
    try:
        name = base64.b32decode(padded, casefold=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a base32-encoded key name") from None
    if encode_name(name) != file_name:
        raise ValueError("not a base32-encoded key name (not in canonical form)")
    return name


def keyinfo_to_bytes(info: KeyInfo) -> bytes:
    """Go's json.Marshal of a KeyInfo: Type then PrivateKey, no spaces."""
    return json.dumps(info.to_json(), separators=(",", ":")).encode("utf-8")


def keyinfo_from_bytes(data: bytes, what: str = "KeyInfo") -> KeyInfo:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"{what}: not valid JSON: {exc}") from None
    info = KeyInfo.from_json(raw, what)
    if not info.type:
        raise DecodeError(f"{what}.Type: empty")
    if not info.private_key:
        raise DecodeError(f"{what}.PrivateKey: empty")
    return info


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise KeystoreError("a key name must be a non-empty string")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise KeystoreError(f"key name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Listing:
    """What a scan of the directory found: the key names, and the files that are not usable keys."""

    names: tuple[str, ...]
    problems: tuple[BadKeyFile, ...]


class Keystore:
    """Keys by name in a directory. Methods are synchronous and thread-safe; callers on the trio loop
    run them with trio.to_thread.run_sync when a disk write must not stall the loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, directory: Path) -> "Keystore":
        """Make the directory (0700) if it is missing, tighten it if it is open to others."""
        directory = Path(directory)
        directory.mkdir(mode=KEYSTORE_DIR_MODE, exist_ok=True)
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "keystore directory was open to others; made it 0700", path=str(directory), mode=oct(mode)
            )
            os.chmod(directory, KEYSTORE_DIR_MODE)
        return cls(directory)

    def _path(self, name: str) -> Path:
        _check_name(name)
        return self.directory / encode_name(name)

    # reading --------------------------------------------------------------------------------------
    def scan(self) -> Listing:
        """Every key name, and a BadKeyFile for each file that is not one (the caller reports them:
        Wallet.load_all logs them when the node starts)."""
        names: list[str] = []
        problems: list[BadKeyFile] = []
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError as exc:
            raise KeystoreError(f"cannot list the keystore {self.directory}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue  # write_atomic's temporary files: never a finished key
            problem = None
            try:
                name = decode_name(entry.name)
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    problem = "not a regular file"
                elif stat.S_IMODE(info.st_mode) & 0o077:
                    problem = f"permissions {oct(stat.S_IMODE(info.st_mode))} are too open (0600 required)"
            except ValueError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = f"cannot stat: {exc.strerror or exc}"
            if problem is None:
                names.append(name)
            else:
                problems.append(BadKeyFile(entry.name, problem))
        return Listing(tuple(names), tuple(problems))

    def list(self) -> list[str]:
        return list(self.scan().names)

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def get(self, name: str) -> KeyInfo:
        """The KeyInfo stored under name; KeyNotFound, or BadKeyFile naming the file and the problem."""
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyNotFound(f"key {name!r} not found") from None
        except OSError as exc:
            raise BadKeyFile(path.name, f"key {name!r}: cannot open: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as stream:
            info = os.fstat(stream.fileno())
            mode = stat.S_IMODE(info.st_mode)
            if not stat.S_ISREG(info.st_mode):
                raise BadKeyFile(path.name, f"key {name!r}: not a regular file")
            if mode & 0o077:
                raise BadKeyFile(
                    path.name, f"key {name!r}: permissions {oct(mode)} are too open (0600 required)"
                )
            data = stream.read(MAX_KEY_FILE_BYTES + 1)
        if len(data) > MAX_KEY_FILE_BYTES:
            raise BadKeyFile(path.name, f"key {name!r}: more than {MAX_KEY_FILE_BYTES} bytes")
        try:
            return keyinfo_from_bytes(data, "KeyInfo")
        except DecodeError as exc:
            raise BadKeyFile(path.name, f"key {name!r}: {exc}") from None

    # writing --------------------------------------------------------------------------------------
    def put(self, name: str, info: KeyInfo, *, overwrite: bool = False) -> None:
        """Store info under name (0600, atomically); KeyExists unless overwrite."""
        path = self._path(name)
        data = keyinfo_to_bytes(info)
        with self._lock:
            if not overwrite and path.exists():
                raise KeyExists(f"key {name!r} already exists")
            try:
                write_atomic(path, data, KEY_FILE_MODE)
            except OSError as exc:
                raise KeystoreError(f"cannot write key {name!r}: {exc.strerror or exc}") from None

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._lock:
            try:
                path.unlink()
            except FileNotFoundError:
                raise KeyNotFound(f"key {name!r} not found") from None
            except OSError as exc:
                raise KeystoreError(f"cannot delete key {name!r}: {exc.strerror or exc}") from None

    def get_or_create(self, name: str, key_type: str, make: Callable[[], bytes]) -> KeyInfo:
        """The key under name, made (with make()) and stored first if there is none: for node secrets
        such as `auth-jwt-private` and `libp2p-host`."""
        with self._lock:
            path = self._path(name)
            if not path.exists():
                info = KeyInfo(type=key_type, private_key=make())
                write_atomic(path, keyinfo_to_bytes(info), KEY_FILE_MODE)
                return info
        info = self.get(name)
        if info.type != key_type:
            raise BadKeyFile(path.name, f"key {name!r} has type {info.type!r}, expected {key_type!r}")
        return info
