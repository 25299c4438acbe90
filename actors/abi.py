"""What the built-in actors share, as go-state-types' `abi` and `builtin` packages: bounds and special
values of chain quantities, the kinds of their common fields, and the types several actors' methods
use alike."""

from typing import Annotated, Final

from chain.encoding.schema import BytesKind, Int64, MaxLen, Name, TokenAmount
from proofs.registered import MAX_SECTOR_NUMBER

__all__ = [
    "EPOCH_UNDEFINED",
    "MAX_SECTOR_NUMBER",
    "Multiaddrs",
    "PeerID",
    "RegisteredPoStProof",
    "RegisteredSealProof",
    "WindowPoStProofType",
    "WithdrawBalanceReturn",
]

# An epoch that has not happened (yet): a deal not activated, a sector never replaced, no last cron.
EPOCH_UNDEFINED: Final = -1

# Registered proof numbers (proofs/registered.py); int64 in Go.
RegisteredSealProof = Int64
RegisteredPoStProof = Int64
# The field every miner record names its Window PoSt proof type with.
WindowPoStProofType = Annotated[RegisteredPoStProof, Name("WindowPoStProofType")]

# abi.PeerID and abi.Multiaddrs: opaque bytes; the bounds keep decoding a hostile message cheap (the
# miner enforces the policy's far smaller limits).
MAX_PEER_BYTES: Final = 4096
MAX_MULTIADDRS: Final = 256
PeerID = Annotated[bytes, BytesKind(max_len=MAX_PEER_BYTES)]
Multiaddrs = Annotated[tuple[PeerID, ...], MaxLen(MAX_MULTIADDRS)]

# What the miner's and the market's WithdrawBalance return: the amount withdrawn, as a bare big
# integer (go-state-types `*abi.TokenAmount`; builtin-actors' serde-transparent struct).
WithdrawBalanceReturn = TokenAmount
