"""Fetching drand rounds a node missed from its peers: `/filpy/drand/rounds/1.0.0`.

Gossip delivers a round once, when it is published; a node that was offline then (or lost the
message) would never see it, and a miner cannot make a block without every round since its parent
(chain/consensus/beacon.py). drand serves old rounds over its HTTP and gRPC APIs, from which Lotus
fetches; filpy nodes serve them to one another over libp2p instead, from their stores:

    request   RoundsRequest  [First uint, Count uint (1..512)]      one CBOR value, then close-write
    response  RoundsResponse [Entries [[Round uint, Data bytes]]]    one CBOR value, then close

The server answers with the consecutive rounds it holds from First on, at most Count (fewer, or none,
when it lacks them). The client checks that they are exactly First, First+1, ... and verifies them as
a chain from the round before First that it trusts (what its store holds, or round 0), so a peer can
withhold rounds but never pass a forged one; a peer whose answer does not verify is reported (the
gossip score's behaviour penalty) and the next is asked.
"""

from collections.abc import Callable
from typing import Annotated, Final

import structlog
import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from chain.encoding.errors import DecodeError
from chain.encoding.schema import CborTuple, MaxLen, Uint64
from chain.types.beacon import BeaconEntry
from node.beacon.store import BeaconStore
from node.p2p.host import Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure, close_quietly, close_write, read_cbor, reset_quietly, write_cbor

log = structlog.get_logger("beacon.sync")

ROUNDS_PROTOCOL: Final = TProtocol("/filpy/drand/rounds/1.0.0")
MAX_ROUNDS_PER_REQUEST: Final = 512
MAX_REQUEST_BYTES: Final = 64
# 512 rounds of about 105 bytes each, with room to spare.
MAX_RESPONSE_BYTES: Final = 128 << 10
TIMEOUT: Final = 10.0


class RoundsRequest(CborTuple):
    first: Uint64
    count: Uint64


class RoundsResponse(CborTuple):
    entries: Annotated[tuple[BeaconEntry, ...], MaxLen(MAX_ROUNDS_PER_REQUEST)] = ()


class RoundsServer:
    """Answers round requests from the store (register with `host.set_stream_handler`)."""

    def __init__(self, store: BeaconStore) -> None:
        self.store = store

    def answer(self, request: RoundsRequest) -> RoundsResponse:
        entries = []
        for round_ in range(request.first, request.first + min(request.count, MAX_ROUNDS_PER_REQUEST)):
            entry = self.store.get(round_)
            if entry is None:
                break
            entries.append(entry)
        return RoundsResponse(tuple(entries))

    async def handle(self, stream: INetStream) -> None:
        peer: PeerID = stream.muxed_conn.peer_id
        try:
            request = RoundsRequest.from_cbor(
                await read_cbor(stream, max_bytes=MAX_REQUEST_BYTES, timeout=TIMEOUT)
            )
            if not 1 <= request.count <= MAX_ROUNDS_PER_REQUEST:
                raise DecodeError(
                    f"RoundsRequest.Count: {request.count} is not in 1..{MAX_ROUNDS_PER_REQUEST}"
                )
            await write_cbor(stream, self.answer(request).to_bytes(), timeout=TIMEOUT)
        except (StreamFailure, DecodeError) as exc:
            log.debug("beacon.sync_request_refused", peer=str(peer), error=str(exc))
            await reset_quietly(stream)
            return
        await close_quietly(stream)


class RoundsFetchFailed(Exception):
    """A peer's answer could not be had or is not what was asked."""


async def request_rounds(host: Libp2pHost, peer: PeerID, first: int, count: int) -> list[BeaconEntry]:
    """Ask one peer for rounds first..first+count-1; the consecutive ones from first it returns."""
    try:
        stream = await host.open_stream(peer, ROUNDS_PROTOCOL, timeout=TIMEOUT)
    except StreamFailure as exc:
        raise RoundsFetchFailed(str(exc)) from None
    try:
        await write_cbor(stream, RoundsRequest(first, count).to_bytes(), timeout=TIMEOUT)
        await close_write(stream)
        raw = await read_cbor(stream, max_bytes=MAX_RESPONSE_BYTES, timeout=TIMEOUT)
        response = RoundsResponse.from_cbor(raw)
    except (StreamFailure, DecodeError) as exc:
        await reset_quietly(stream)
        raise RoundsFetchFailed(str(exc)) from None
    await close_quietly(stream)
    rounds = [entry.round for entry in response.entries]
    if rounds != list(range(first, first + len(rounds))) or len(rounds) > count:
        raise RoundsFetchFailed(f"asked for rounds from {first}, {count} at most; got {rounds[:5]}...")
    return list(response.entries)


Verify = Callable[[list[BeaconEntry], BeaconEntry], None]


async def fetch_rounds(
    host: Libp2pHost,
    anchor: BeaconEntry,
    last: int,
    verify: Verify,
    *,
    penalize: Callable[[PeerID, str], None] | None = None,
) -> list[BeaconEntry]:
    """Rounds anchor.round+1..last from the peers that serve them, verified as a chain from anchor;
    as many as some peer had (possibly none). Peers are asked in turn until one has them all."""
    best: list[BeaconEntry] = []
    first = anchor.round + 1
    peers = [p for p in host.connected_peers() if host.supports(p, ROUNDS_PROTOCOL)]
    for peer in peers:
        got: list[BeaconEntry] = []
        try:
            while first + len(got) <= last:
                start = first + len(got)
                batch = await request_rounds(host, peer, start, min(last - start + 1, MAX_ROUNDS_PER_REQUEST))
                if not batch:
                    break
                verify(batch, got[-1] if got else anchor)
                got.extend(batch)
        except RoundsFetchFailed as exc:
            log.info("beacon.sync_failed", peer=str(peer), error=str(exc))
        except ValueError as exc:  # InvalidBeaconEntry: the peer served rounds that are not the chain
            log.warning("beacon.sync_rejected", peer=str(peer), reason=str(exc))
            if penalize is not None:
                penalize(peer, f"drand rounds: {exc}")
        if len(got) > len(best):
            best = got
        if best and best[-1].round == last:
            break
        await trio.lowlevel.checkpoint()
    return best
