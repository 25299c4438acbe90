"""`/fil/retrieval/qry/1.0.0`: ask a provider whether it has a payload, and on what terms.

The wire types are go-fil-markets' (retrievalmarket/types.go), map-encoded as cbor-gen writes them:
the client opens a stream and writes one `Query{PayloadCID, QueryParams{PieceCID}}`; the provider
answers one `QueryResponse{Status, PieceCIDFound, Size, PaymentAddress, MinPricePerByte,
MaxPaymentInterval, MaxPaymentIntervalIncrease, Message, UnsealPrice}` and closes the stream.

The provider answers from its piece store and its retrieval ask, as go-fil-markets' provider did:
available with the size of the piece (unpadded) and the ask's terms, or unavailable with a message
saying why; a failure of its own is an error status. `Size` is the unpadded piece size (what
go-fil-markets reports), so `Size * MinPricePerByte + UnsealPrice` is what the whole piece costs.
"""

from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, Final

import structlog
from libp2p.custom_types import TProtocol

from chain.encoding.cid import CID
from chain.encoding.schema import CborMap, Name, TokenAmount, Uint64
from chain.types.address import Address
from node.markets.exchange import CborExchange
from node.markets.piecestore import FREE_ASK, PieceStore, RetrievalAsk, StoredPiece
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID

_log = structlog.get_logger(__name__)

QUERY_PROTOCOL: Final = TProtocol("/fil/retrieval/qry/1.0.0")


class QueryResponseStatus(IntEnum):
    Available = 0
    Unavailable = 1
    Error = 2


class QueryItemStatus(IntEnum):
    Available = 0
    Unavailable = 1
    Unknown = 2


class QueryParams(CborMap):
    piece_cid: Annotated[CID | None, Name("PieceCID")] = None


class Query(CborMap):
    payload_cid: Annotated[CID, Name("PayloadCID")]
    query_params: QueryParams = QueryParams()


class QueryResponse(CborMap, kw_only=True):
    status: Uint64  # a QueryResponseStatus; any number decodes, as in go-fil-markets
    piece_cid_found: Annotated[Uint64, Name("PieceCIDFound")]  # a QueryItemStatus
    size: Uint64 = 0
    payment_address: Address
    min_price_per_byte: TokenAmount = 0
    max_payment_interval: Uint64 = 0
    max_payment_interval_increase: Uint64 = 0
    message: str = ""
    unseal_price: TokenAmount = 0

    def piece_retrieval_price(self) -> int:
        """What the whole piece costs: size x price per byte + unsealing (go-fil-markets)."""
        return self.size * self.min_price_per_byte + self.unseal_price


QUERY: Final = CborExchange(QUERY_PROTOCOL, Query.from_cbor, QueryResponse.from_cbor, 4 << 10, 64 << 10)


class QueryError(Exception):
    """The query could not be asked or answered (stream, timeout, bad response); the message says why."""


def best_piece(pieces: list[StoredPiece], asks: Callable[[StoredPiece], RetrievalAsk]) -> StoredPiece:
    """The piece to quote for when several hold the payload: the cheapest in full, then the smallest."""
    return min(
        pieces, key=lambda p: (asks(p).price_per_byte * p.unpadded_size + asks(p).unseal_price, p.padded_size)
    )


class RetrievalQueryProvider:
    """The provider's side: answers queries from the piece store and the retrieval ask."""

    def __init__(
        self,
        store: PieceStore,
        *,
        payment_address: Address | Callable[[StoredPiece | None], Address],
        ask: RetrievalAsk | Callable[[], RetrievalAsk] = FREE_ASK,
    ) -> None:
        self.store = store
        self._payment_address = payment_address
        self._ask = ask

    def register(self, host: Libp2pHost) -> None:
        QUERY.serve(host, self._answer, event="retrieval.query")

    def provider_ask(self) -> RetrievalAsk:
        return self._ask() if callable(self._ask) else self._ask

    def ask_of(self, piece: StoredPiece) -> RetrievalAsk:
        return piece.ask if piece.ask is not None else self.provider_ask()

    def payment_address(self, piece: StoredPiece | None) -> Address:
        """Where a retrieval of piece is paid (with no piece: the address an unavailable answer names)."""
        return self._payment_address(piece) if callable(self._payment_address) else self._payment_address

    def answer(self, query: Query) -> QueryResponse:
        """The response to a query (no I/O but the in-memory indexes)."""
        payload = query.payload_cid
        wanted = query.query_params.piece_cid
        try:
            pieces = self.store.pieces_with(payload)
        except Exception as exc:  # the store's failure is ours: tell the client, as go-fil-markets does
            _log.exception("retrieval.query_failed", payload=str(payload))
            return QueryResponse(
                status=QueryResponseStatus.Error,
                piece_cid_found=QueryItemStatus.Unavailable,
                payment_address=self.payment_address(None),
                message=f"failed to look up the payload: {exc}",
            )
        if wanted is not None:
            pieces = [piece for piece in pieces if piece.piece_cid == wanted]
        if not pieces:
            where = f"in piece {wanted}" if wanted is not None else "in any piece stored here"
            return QueryResponse(
                status=QueryResponseStatus.Unavailable,
                piece_cid_found=QueryItemStatus.Unavailable,
                payment_address=self.payment_address(None),
                message=f"payload {payload} is not {where}",
            )
        piece = best_piece(pieces, self.ask_of)
        ask = self.ask_of(piece)
        return QueryResponse(
            status=QueryResponseStatus.Available,
            piece_cid_found=QueryItemStatus.Available,
            size=piece.unpadded_size,
            payment_address=self.payment_address(piece),
            min_price_per_byte=ask.price_per_byte,
            max_payment_interval=ask.payment_interval,
            max_payment_interval_increase=ask.payment_interval_increase,
            unseal_price=ask.unseal_price,
        )

    async def _answer(self, query: Query, peer: str) -> QueryResponse:
        response = self.answer(query)
        _log.debug("retrieval.query", peer=peer, payload=str(query.payload_cid), status=response.status)
        return response


async def query(
    host: Libp2pHost,
    peer: PeerID,
    payload_cid: CID,
    piece_cid: CID | None = None,
    *,
    timeout: float = QUERY.timeout,
) -> QueryResponse:
    """Ask peer about payload_cid (in piece_cid, if given); QueryError if no answer can be had."""
    return await QUERY.ask(
        host,
        peer,
        Query(payload_cid, QueryParams(piece_cid)),
        what="the query",
        error=QueryError,
        timeout=timeout,
    )
