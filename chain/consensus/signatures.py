"""Signatures a node has verified, so that none is verified twice.

A block's worker signature and its ticket and election VRFs (BLS signatures, ~1.3-1.7 ms each with
blspy, which holds the GIL) are checked by the gossip block check (`validate_header`) and again by full
validation (`validate_block`) when the block arrives by gossip. Whether a signature verifies is a pure
function of the signature, the signer's key address and the signed bytes, so a positive answer is
remembered under a digest of the three and reused. Failures are not remembered: a bad signature is
checked again, and its error says why each time.

One `VerifiedSignatures` per StateManager (`verified_signatures(sm)`), i.e. per node: nodes sharing a
process (tests, benchmarks) do not share what each verified.
"""

import hashlib
import threading
import weakref
from typing import Final

from chain.crypto.signature import Signature, verify
from chain.stmgr.manager import StateManager
from chain.store.lru import Lru
from chain.types.address import Address

DEFAULT_SIZE: Final = 8192


class VerifiedSignatures:
    """Positive signature checks, bounded (least recently used forgotten first). Thread-safe."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._verified: Lru[bytes, bool] = Lru(size)
        self.hits = 0

    @staticmethod
    def _key(signature: Signature, signer: Address, data: bytes) -> bytes:
        h = hashlib.sha256()
        for part in (bytes((int(signature.type),)), signer.to_bytes(), signature.data):
            h.update(len(part).to_bytes(4, "big"))
            h.update(part)
        h.update(data)
        return h.digest()

    def is_verified(self, signature: Signature, signer: Address, data: bytes) -> bool:
        return self._verified.get(self._key(signature, signer, data)) is not None

    def verify(self, signature: Signature, signer: Address, data: bytes) -> None:
        """chain.crypto.signature.verify, once per (signature, signer, data): raises SignatureError."""
        key = self._key(signature, signer, data)
        if self._verified.get(key) is not None:
            self.hits += 1
            return
        verify(signature, signer, data)
        self._verified.put(key, True)

    def __len__(self) -> int:
        return len(self._verified)


_registry: "weakref.WeakKeyDictionary[StateManager, VerifiedSignatures]" = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def verified_signatures(sm: StateManager) -> VerifiedSignatures:
    """The signatures verified on behalf of this StateManager's node."""
    with _registry_lock:
        found = _registry.get(sm)
        if found is None:
            found = _registry[sm] = VerifiedSignatures()
        return found
