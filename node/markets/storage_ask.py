"""The provider's storage ask: set, signed, kept, served over `/fil/storage/ask/1.1.0`, and checked by
clients.

`AskStore` keeps one `SignedStorageAsk` per miner in the provider's metadata store. `set_ask` builds the
next one as go-fil-markets' StoredAsk.SetAsk does (SeqNo one more than the last, Timestamp the head's
height, Expiry Timestamp + duration, piece sizes kept from the last ask unless given) and has the
miner's worker sign its CBOR. A provider with no ask set answers with none, and accepts no deals.

`AskProvider.register(host)` answers `AskRequest{Miner}` with the ask of that miner (none for a miner it
does not serve). `query_ask(host, peer, miner)` is the client's side; `verify_ask` checks what came back
against the chain: the ask is for the miner asked about, not expired, and signed by the miner's current
worker key.
"""

from collections.abc import Awaitable, Callable
from typing import Final, Required, TypedDict, Unpack

import structlog

from actors.market.policy import piece_size_error
from chain.chainstore.metadata import MetadataStore
from chain.crypto.signature import Signature, is_valid
from chain.encoding.errors import DecodeError
from chain.types.address import Address
from chain.types.tipset import TipSet
from node.fullnode import FullNode
from node.markets.chain_view import worker_key
from node.markets.storage_types import (
    ASK,
    AskRequest,
    AskResponse,
    SignedStorageAsk,
    StorageAsk,
)
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID

_log = structlog.get_logger(__name__)

ASK_KEY_PREFIX: Final = b"ask/"

# go-fil-markets storedask defaults: attoFIL per GiB per epoch, epochs, padded bytes.
DEFAULT_PRICE: Final = 500_000_000
DEFAULT_VERIFIED_PRICE: Final = 50_000_000
DEFAULT_DURATION: Final = 1_000_000
DEFAULT_MIN_PIECE_SIZE: Final = 256
DEFAULT_MAX_PIECE_SIZE: Final = 1 << 20

Signer = Callable[[Address, bytes], Signature]


class AskTerms(TypedDict, total=False):
    """What a miner's ask says: prices in attoFIL per GiB per epoch, how many epochs it lasts
    (DEFAULT_DURATION), and the padded piece sizes it takes (left out or None: the last ask's, else
    go-fil-markets' defaults)."""

    price: Required[int]
    verified_price: Required[int]
    duration: int
    min_piece_size: int | None
    max_piece_size: int | None


class AskError(Exception):
    """An ask that cannot be set, had or trusted; the message says why."""


def _key(miner: Address) -> bytes:
    return ASK_KEY_PREFIX + miner.to_bytes()


class AskStore:
    """The signed asks of the miners this node serves (synchronous: call from a worker thread)."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    def get(self, miner: Address) -> SignedStorageAsk | None:
        raw = self._meta.get(_key(miner))
        if raw is None:
            return None
        try:
            return SignedStorageAsk.from_bytes(raw)
        except DecodeError as exc:
            _log.error("ask.unreadable", miner=str(miner), error=str(exc))
            return None

    def set_ask(
        self, miner: Address, *, epoch: int, worker: Address, sign: Signer, **terms: Unpack[AskTerms]
    ) -> SignedStorageAsk:
        """Make, sign and keep the miner's next ask; AskError (nothing kept) for terms that make no sense."""
        previous = self.get(miner)
        last = previous.ask if previous is not None else None
        price, verified_price = terms["price"], terms["verified_price"]
        duration = terms.get("duration", DEFAULT_DURATION)
        low = terms.get("min_piece_size")
        low = low if low is not None else (last.min_piece_size if last else DEFAULT_MIN_PIECE_SIZE)
        high = terms.get("max_piece_size")
        high = high if high is not None else (last.max_piece_size if last else DEFAULT_MAX_PIECE_SIZE)
        for name, size in (("minimum", low), ("maximum", high)):
            error = piece_size_error(size)
            if error is not None:
                raise AskError(f"{name} piece size: {error}")
        if low > high:
            raise AskError(f"minimum piece size {low} is above the maximum {high}")
        if price < 0 or verified_price < 0:
            raise AskError("prices cannot be negative")
        if duration <= 0:
            raise AskError(f"the ask must last at least one epoch, not {duration}")
        ask = StorageAsk(
            price=price,
            verified_price=verified_price,
            min_piece_size=low,
            max_piece_size=high,
            miner=miner,
            timestamp=epoch,
            expiry=epoch + duration,
            seq_no=last.seq_no + 1 if last is not None else 0,
        )
        signed = SignedStorageAsk(ask, sign(worker, ask.to_bytes()))
        self._meta.put(_key(miner), signed.to_bytes())
        _log.info("ask.set", miner=str(miner), price=price, verified_price=verified_price, seq_no=ask.seq_no)
        return signed


async def set_ask(
    node: FullNode, store: AskStore, miner: Address, **terms: Unpack[AskTerms]
) -> SignedStorageAsk:
    """MarketSetAsk: the new ask, signed by the miner's worker from this node's wallet."""
    head = node.chain.head()
    info, worker = await node.run_sync(worker_key, node, miner, head)
    if not node.wallet.has(worker):
        raise AskError(f"the wallet does not hold the key of {miner}'s worker {info.worker} ({worker})")
    return await node.run_sync(
        lambda: store.set_ask(miner, epoch=head.height, worker=worker, sign=node.wallet.sign, **terms)
    )


def verify_ask(node: FullNode, signed: SignedStorageAsk, miner: Address, ts: TipSet) -> StorageAsk:
    """The ask if it is the miner's, unexpired at ts and signed by its worker; AskError otherwise
    (synchronous: reads the state)."""
    ask, signature = signed.ask, signed.signature
    if ask is None:
        raise AskError(f"{miner} has no storage ask")
    if signature is None:
        raise AskError(f"the ask of {miner} is not signed")
    if ask.miner != miner:
        raise AskError(f"asked about {miner}, the answer is the ask of {ask.miner}")
    if ask.expiry <= ts.height:
        raise AskError(f"the ask of {miner} expired at epoch {ask.expiry} (now {ts.height})")
    info, key = worker_key(node, miner, ts)
    if not is_valid(signature, key, ask.to_bytes()):
        raise AskError(f"the ask of {miner} is not signed by its worker {info.worker}")
    return ask


class AskProvider:
    """Answers `/fil/storage/ask/1.1.0` for the miners this node serves, each from its provider's ask
    store (a provider restarted over other records brings its own)."""

    def __init__(
        self,
        store_of: Callable[[Address], AskStore | None],
        run_sync: Callable[..., Awaitable[object]],
    ) -> None:
        self._store_of = store_of
        self._run_sync = run_sync

    def register(self, host: Libp2pHost) -> None:
        ASK.serve(host, self._answer, event="ask.request")

    async def _answer(self, request: AskRequest, peer: str) -> AskResponse:
        ask = None
        store = self._store_of(request.miner)
        if store is not None:
            ask = await self._run_sync(store.get, request.miner)
        else:
            _log.info("ask.other_miner", peer=peer, miner=str(request.miner))
        assert ask is None or isinstance(ask, SignedStorageAsk)
        return AskResponse(ask)


async def query_ask(
    host: Libp2pHost, peer: PeerID, miner: Address, *, timeout: float = ASK.timeout
) -> SignedStorageAsk:
    """Ask peer for miner's signed ask (not yet checked: see verify_ask); AskError if it cannot be had."""
    response = await ASK.ask(
        host,
        peer,
        AskRequest(miner),
        what=f"the request for the ask of {miner}",
        error=AskError,
        timeout=timeout,
    )
    if response.ask is None:
        raise AskError(f"{peer} has no storage ask for {miner}")
    return response.ask
