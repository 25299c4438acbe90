"""Chain exchange: every status the server gives, the compacted form, fetching over the network, and
peers that lie."""

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio

from chain.chainstore.store import ChainStore
from chain.encoding import dagcbor
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet, TipSetKey
from node.p2p.chainview import IncludedMessages, MessageBlock
from node.p2p.chainxchg import (
    MAX_REQUEST_LENGTH,
    Answer,
    BadResponse,
    BSTipSet,
    ChainExchangeError,
    CompactedMessages,
    Options,
    Request,
    Response,
    Status,
    compact,
    decode_response,
    expand,
    serve,
    validate_response,
)
from node.p2p.protocols import CHAIN_EXCHANGE_PROTOCOL, PeerID
from node.p2p.service import P2PNode
from node.p2p.streamio import close_write, read_cbor, write_cbor
from tests.p2p.chain_fixtures import MemoryChain, build_chain
from tests.p2p.harness import connect, make_node, running, wait_until

BOTH = Options.HEADERS | Options.MESSAGES


def decoded(answer: Answer) -> Response:
    """A server's answer as its peer reads it."""
    return Response.from_bytes(answer.to_bytes())


# -- the server's answers, without a network -------------------------------------------------------


def test_ok_partial_and_not_found() -> None:
    chain, tipsets = build_chain(5)
    head = tipsets[5]
    ok = decoded(serve(chain, Request(head.cids, 3, BOTH)))
    assert ok.status == Status.OK and ok.error_message == ""
    assert [TipSet(entry.blocks) for entry in ok.chain] == tipsets[5:2:-1]
    for entry, tipset in zip(ok.chain, tipsets[5:2:-1], strict=True):
        assert entry.messages is not None
        expected = [chain.included(block) for block in tipset.blocks]
        assert list(expand(tipset.blocks, entry.messages)) == expected

    # Genesis reached before the length asked: partial, genesis included.
    answer = serve(chain, Request(head.cids, 10, Options.HEADERS))
    assert answer.status == Status.PARTIAL
    assert [TipSet(e.blocks).height for e in answer.chain] == [5, 4, 3, 2, 1, 0]
    assert all(e.messages is None for e in answer.chain)

    # Messages only: no headers in the answer.
    answer = serve(chain, Request(head.cids, 2, Options.MESSAGES))
    assert answer.status == Status.OK and all(e.blocks == () and e.messages is not None for e in answer.chain)

    # A parent this store lacks, or messages it lacks below the head: partial up to there.
    del chain.tipsets[tipsets[3].key]
    answer = serve(chain, Request(head.cids, 4, Options.HEADERS))
    assert (answer.status, len(answer.chain)) == (Status.PARTIAL, 2)
    del chain.messages[tipsets[4].blocks[1].cid()]
    answer = serve(chain, Request(head.cids, 4, BOTH))
    assert (answer.status, len(answer.chain)) == (Status.PARTIAL, 1)

    # The head itself, or its messages, unknown: not found.
    answer = serve(chain, Request(tipsets[4].cids, 1, BOTH))
    assert answer.status == Status.NOT_FOUND and "messages" in answer.error_message
    answer = serve(chain, Request(tipsets[3].cids, 1, Options.HEADERS))
    assert answer.status == Status.NOT_FOUND and "not found" in answer.error_message
    assert answer.chain == ()


def _chain_store(chain: MemoryChain, tipsets: Sequence[TipSet]) -> ChainStore:
    """A ChainStore holding the test chain's tipsets and messages."""
    store = ChainStore.in_memory()
    store.set_genesis(chain.genesis())
    for tipset in tipsets:
        for block in tipset.blocks:
            included = chain.included(block)
            assert store.put_messages(included.bls, included.secpk) == block.messages
        store.put_tipset(tipset, chain.head_weight())
    return store


def test_the_chain_store_is_a_chain_view() -> None:
    """Served from chain/chainstore's ChainStore, answers are the same as from the test chain."""
    chain, tipsets = build_chain(3)
    store = _chain_store(chain, tipsets)
    store.set_head(tipsets[3], 3000)
    for request in (Request(tipsets[3].cids, 9, BOTH), Request(tipsets[2].cids, 1, Options.MESSAGES)):
        assert serve(store, request) == serve(chain, request)
    assert serve(store, Request((TipSetKey().cid(),), 1, BOTH)).status == Status.NOT_FOUND


def test_answers_are_written_as_the_stored_bytes_encode_them() -> None:
    """An answer written from the stored bytes of each header and message is, byte for byte, the
    Response of the decoded headers and messages encoded whole (secp256k1 and BLS messages, shared
    ones compacted, every kind of answer)."""
    chain, tipsets = build_chain(4)
    store = _chain_store(chain, tipsets)
    requests = [
        Request(tipsets[4].cids, 9, BOTH),
        Request(tipsets[3].cids, 2, Options.MESSAGES),
        Request(tipsets[4].cids, 3, Options.HEADERS),
        Request(tipsets[4].cids, 0, BOTH),
        Request((TipSetKey().cid(),), 1, BOTH),
    ]
    position = {t.key: i for i, t in enumerate(tipsets)}
    for request in requests:
        for view in (store, chain):
            answer = serve(view, request)
            # The same answer as decoded values, encoded whole: tipsets back from the head.
            entries = []
            for i in range(len(answer.chain)):
                tipset = tipsets[position[TipSetKey(request.head)] - i]
                headers = tipset.blocks if request.options & Options.HEADERS else ()
                included = [chain.included(block) for block in tipset.blocks]
                entries.append(
                    BSTipSet(headers, compact(included) if request.options & Options.MESSAGES else None)
                )
            whole = Response(answer.status, answer.error_message, tuple(entries))
            assert answer.to_bytes() == dagcbor.encode(whole.to_cbor())
            assert decoded(answer) == whole
    first = decoded(serve(store, requests[0])).chain[0].messages
    assert first is not None and first.bls and first.secpk
    assert len(first.secpk) == 3  # one shared by both blocks, sent once


def test_the_client_keeps_the_bytes_it_received() -> None:
    """decode_response gives what decoding the answer whole gives, each header and message holding the
    bytes it came in (its CID their hash, not that of encoding it again); an answer with a header
    encoded in a form strict DAG-CBOR refuses is refused."""
    chain, tipsets = build_chain(3)
    data = serve(chain, Request(tipsets[3].cids, 3, BOTH)).to_bytes()
    answer = decode_response(data)
    assert answer == Response.from_bytes(data)
    for entry in answer.chain:
        assert entry.messages is not None
        for item in (*entry.blocks, *entry.messages.bls, *entry.messages.secpk):
            kept = item.to_bytes()
            assert kept in data and item.cid() == CID.hash_of(kept)
            assert kept == dagcbor.encode(item.to_cbor())
        for signed in entry.messages.secpk:
            assert signed.message.to_bytes() == dagcbor.encode(signed.message.to_cbor())
    header = tipsets[3].blocks[0].to_bytes()
    assert header[0] == 0x90  # an array of 16: its length in the head's first byte
    for wide in (b"\x98\x10", b"\x99\x00\x10"):  # the same length in one or two bytes more: not canonical
        bad = data.replace(header, wide + header[1:])
        assert bad != data
        with pytest.raises(DecodeError, match="non-minimal length"):
            decode_response(bad)
        with pytest.raises(DecodeError, match="non-minimal length"):
            dagcbor.decode(bad)


def test_budget_makes_an_answer_partial_but_never_empty() -> None:
    chain, tipsets = build_chain(4)
    answer = serve(chain, Request(tipsets[4].cids, 4, BOTH), budget=1)
    assert (answer.status, len(answer.chain)) == (Status.PARTIAL, 1)


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (Request((), 1, Options.HEADERS), "no cids"),
        (Request((TipSetKey().cid(),), 0, Options.HEADERS), "zero"),
        (Request((TipSetKey().cid(),), MAX_REQUEST_LENGTH + 1, Options.HEADERS), "over maximum"),
        (Request((TipSetKey().cid(),), 1, 0), "no options"),
        (Request((TipSetKey().cid(),), 1, 4), "no options"),  # an unknown bit alone asks for nothing
    ],
)
def test_bad_requests(request_: Request, says: str) -> None:
    chain, _ = build_chain(1)
    answer = serve(chain, request_)
    assert answer.status == Status.BAD_REQUEST and says in answer.error_message and answer.chain == ()


def test_compacted_messages_round_trip() -> None:
    chain, tipsets = build_chain(2, blocks=3)
    tipset = tipsets[2]
    per_block = [chain.included(block) for block in tipset.blocks]
    assert all(m is not None for m in per_block)
    compacted = compact([m for m in per_block if m is not None])
    # Every block carries the shared messages; they are sent once.
    assert len(compacted.secpk) == 1 + 3 and len(compacted.bls) == 1 + 3
    assert all(0 in includes for includes in compacted.secpk_includes)
    wire = CompactedMessages.from_bytes(compacted.to_bytes())
    assert wire == compacted
    assert list(expand(tipset.blocks, wire)) == per_block
    # The CBOR shape: [Bls [Message], BlsIncludes [[uint]], Secpk [SignedMessage], SecpkIncludes [[uint]]]
    raw = dagcbor.decode(compacted.to_bytes())
    assert len(raw) == 4 and raw[1] == [list(i) for i in compacted.bls_includes]
    assert raw[2][0] == dagcbor.decode(compacted.secpk[0].to_bytes())
    response = Response(Status.OK, "", (BSTipSet(tipset.blocks, compacted),))
    assert dagcbor.decode(response.to_bytes())[:2] == [0, ""]
    assert Response.from_bytes(response.to_bytes()) == response


def test_compacted_messages_that_do_not_fit_are_refused() -> None:
    chain, tipsets = build_chain(2)
    tipset = tipsets[2]
    good = compact([m for m in (chain.included(b) for b in tipset.blocks) if m is not None])
    cases = {
        "for 1/2 blocks": CompactedMessages(good.bls, good.bls_includes[:1], good.secpk, good.secpk_includes),
        "out of range": CompactedMessages(good.bls, good.bls_includes, good.secpk, ((0, 7), (0,))),
        "not the ones": CompactedMessages(good.bls, good.bls_includes, good.secpk, good.secpk_includes[::-1]),
    }
    for says, compacted in cases.items():
        with pytest.raises(BadResponse, match=says):
            expand(tipset.blocks, compacted)


def test_responses_are_checked_against_the_request() -> None:
    _, tipsets = build_chain(4)
    _, others = build_chain(4, salt="elsewhere")
    request = Request(tipsets[4].cids, 3, Options.HEADERS)

    def entries(*sets: TipSet) -> tuple[BSTipSet, ...]:
        return tuple(BSTipSet(t.blocks, None) for t in sets)

    good = Response(Status.OK, "", entries(tipsets[4], tipsets[3], tipsets[2]))
    assert [t.height for t in validate_response(request, good).tipsets] == [4, 3, 2]
    lies = {
        "no tipsets": Response(Status.OK, "", ()),
        "for a request of 3": Response(Status.OK, "", entries(*tipsets[4:0:-1])),
        "without status partial": Response(Status.OK, "", entries(tipsets[4], tipsets[3])),
        "not the one asked": Response(Status.OK, "", entries(others[4], others[3], others[2])),
        "not the parent": Response(Status.OK, "", entries(tipsets[4], others[3], others[2])),
        "not a success": Response(Status.GO_AWAY, "", entries(tipsets[4])),
    }
    for says, response in lies.items():
        with pytest.raises(BadResponse, match=says):
            validate_response(request, response)
    partial = Response(Status.PARTIAL, "", entries(tipsets[4], tipsets[3]))
    assert validate_response(request, partial).status == Status.PARTIAL
    with pytest.raises(BadResponse, match="no messages"):
        validate_response(Request(tipsets[4].cids, 1, BOTH), Response(Status.OK, "", entries(tipsets[4])))


# -- over the network ---------------------------------------------------------------------------------


@asynccontextmanager
async def serving(chain: MemoryChain) -> AsyncIterator[tuple[P2PNode, P2PNode]]:
    """A node serving chain and a client with only a genesis, connected, the server identified as the
    client's exchange peer."""
    empty, _ = build_chain(0)
    (server, _), (client, _) = make_node(chain), make_node(empty)
    async with running(server, client):
        await connect(client, server)
        peer = server.host.peer_id
        await wait_until(lambda: client.xchg.candidates() == [peer], what="server identified")
        yield server, client


async def test_fetching_headers_messages_and_full_tipsets() -> None:
    chain, tipsets = build_chain(6)
    async with serving(chain) as (server, client):
        peer = server.host.peer_id

        got = await client.xchg.get_blocks(tipsets[6].key, 4)
        assert got == tipsets[6:2:-1]
        full = await client.xchg.get_full_tipset(peer, tipsets[5].key)
        assert full.tipset() == tipsets[5]
        for block in full.blocks:
            assert IncludedMessages(block.bls_messages, block.secpk_messages) == chain.included(block.header)
        messages = await client.xchg.get_chain_messages(tipsets[3:0:-1])
        assert list(messages) == [tuple(chain.included(b) for b in t.blocks) for t in tipsets[3:0:-1]]
        # Down to genesis: partial answers end the walk there.
        assert [t.height for t in await client.xchg.get_blocks(tipsets[2].key, 10)] == [2, 1, 0]
        assert client.xchg.tracker.records[peer].successes == 4


async def test_a_long_segment_takes_several_requests() -> None:
    chain, tipsets = build_chain(MAX_REQUEST_LENGTH + 40, blocks=1)
    async with serving(chain) as (server, client):
        got = await client.xchg.get_blocks(tipsets[-1].key, MAX_REQUEST_LENGTH + 20)
        assert got == tipsets[-1 : -MAX_REQUEST_LENGTH - 21 : -1]
        assert client.xchg.tracker.records[server.host.peer_id].successes == 2


async def _raw_exchange(client_node: object, peer: PeerID, payload: bytes) -> Response:
    host = client_node.host  # type: ignore[attr-defined]
    stream = await host.open_stream(peer, CHAIN_EXCHANGE_PROTOCOL, timeout=5)
    await write_cbor(stream, payload, timeout=5)
    await close_write(stream)
    return Response.from_cbor(await read_cbor(stream, max_bytes=1 << 20, timeout=5))


async def test_every_status_over_the_wire() -> None:
    chain, tipsets = build_chain(3)
    async with serving(chain) as (server, client):
        peer = server.host.peer_id

        ok = await client.xchg.request_from(peer, Request(tipsets[3].cids, 2, BOTH))
        assert ok.status == Status.OK
        partial = await client.xchg.request_from(peer, Request(tipsets[3].cids, 9, Options.HEADERS))
        assert partial.status == Status.PARTIAL and len(partial.chain) == 4
        unknown = await client.xchg.request_from(peer, Request((TipSetKey().cid(),), 1, BOTH))
        assert unknown.status == Status.NOT_FOUND
        bad = await client.xchg.request_from(peer, Request(tipsets[3].cids, 901, BOTH))
        assert bad.status == Status.BAD_REQUEST
        garbage = await _raw_exchange(client, peer, b"\x83\x80\x01")  # [[], 1, <missing>]
        assert garbage.status == Status.BAD_REQUEST and "undecodable" in garbage.error_message
        shape = await _raw_exchange(client, peer, dagcbor.encode(["head", 1, 1]))
        assert shape.status == Status.BAD_REQUEST and "Request.Head" in shape.error_message

        with pytest.raises(ChainExchangeError, match="NOT_FOUND"):
            await client.xchg.get_blocks(TipSetKey((TipSetKey().cid(),)), 1)


@dataclass
class BrokenChain(MemoryChain):
    """A chain store that fails when read."""

    def load_tipset(self, key: TipSetKey) -> TipSet:
        raise OSError("disk on fire")


async def test_internal_error_and_go_away() -> None:
    chain, tipsets = build_chain(2)
    broken = BrokenChain(chain.genesis_tipset)
    (failing, _), (client, _) = make_node(broken), make_node(chain)
    async with running(failing, client):
        await connect(client, failing)
        answer = await client.xchg.request_from(failing.host.peer_id, Request(tipsets[2].cids, 1, BOTH))
        assert answer.status == Status.INTERNAL_ERROR and "disk on fire" in answer.error_message

    # A server busy with as many requests as it takes says go away to the next one.
    slow, _ = build_chain(2)
    slow.gate = threading.Event()
    (server, _), (client, _) = make_node(slow), make_node(chain)
    server.xchg_server.max_concurrent = 1
    async with running(server, client):
        await connect(client, server)
        peer = server.host.peer_id
        answers: list[Response] = []

        async def ask() -> None:
            answers.append(await client.xchg.request_from(peer, Request(tipsets[2].cids, 1, BOTH)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await wait_until(
                lambda: sum(server.xchg_server._active.values()) == 1, what="first request served"
            )
            second = await client.xchg.request_from(peer, Request(tipsets[2].cids, 1, BOTH))
            assert second.status == Status.GO_AWAY
            slow.gate.set()
        assert [a.status for a in answers] == [Status.OK]


@dataclass
class LyingChain(MemoryChain):
    """A chain store that answers each parent lookup with a tipset from another chain."""

    other: dict[int, TipSet] | None = None

    def load_tipset(self, key: TipSetKey) -> TipSet:
        found = super().load_tipset(key)
        if key != self.head().key and self.other is not None:
            return self.other[found.height]
        return found


@dataclass
class WrongMessagesChain(MemoryChain):
    """A chain store that sends no messages for blocks that have some."""

    def message_blocks(self, header: BlockHeader) -> tuple[Sequence[MessageBlock], Sequence[MessageBlock]]:
        return (), ()


async def test_lying_peers_are_rejected_penalised_and_skipped() -> None:
    honest, tipsets = build_chain(3)
    _, others = build_chain(3, salt="a fork nobody has")
    stored = {"tipsets": dict(honest.tipsets), "messages": dict(honest.messages), "heaviest": honest.head()}
    liar = LyingChain(honest.genesis_tipset, **stored, other={t.height: t for t in others})  # type: ignore[arg-type]
    muddle = WrongMessagesChain(honest.genesis_tipset, **stored)  # type: ignore[arg-type]
    empty, _ = build_chain(0)
    nodes = [make_node(c)[0] for c in (liar, muddle, honest, empty)]
    lying, muddled, truthful, client = nodes
    penalised: list[tuple[PeerID, str]] = []
    client.xchg.penalize = lambda peer, reason: penalised.append((peer, reason))
    async with running(*nodes):
        for server in (lying, muddled, truthful):
            await connect(client, server)
        await wait_until(lambda: len(client.xchg.candidates()) == 3, what="servers identified")

        # Alone, the liar's answer is refused.
        with pytest.raises(ChainExchangeError, match="not the parent"):
            await client.xchg.get_blocks(tipsets[3].key, 3, peers=[lying.host.peer_id])
        with pytest.raises(ChainExchangeError, match="not the ones it includes"):
            await client.xchg.get_full_tipset(muddled.host.peer_id, tipsets[3].key)
        assert [p for p, _ in penalised] == [lying.host.peer_id, muddled.host.peer_id]
        # Asked in turn, the client gets the truth from the honest peer, and leaves the liars alone.
        got = await client.xchg.get_blocks(
            tipsets[3].key, 3, peers=[lying.host.peer_id, truthful.host.peer_id]
        )
        assert got == tipsets[3:0:-1]
        assert client.xchg.candidates() == [truthful.host.peer_id]
        assert client.gossip.score(lying.host.peer_id) == pytest.approx(
            0, abs=0.01
        )  # penalize was replaced here


def test_gossip_penalty_for_chain_exchange_liars_weighs_past_six() -> None:
    chain, _ = build_chain(0)
    node, _ = make_node(chain)
    peer = node.host.peer_id
    for _ in range(6):
        node.gossip.penalize(peer, "lied")
    assert node.gossip.score(peer) == 0
    node.gossip.penalize(peer, "lied")
    node.gossip.penalize(peer, "lied")
    assert node.gossip.score(peer) == pytest.approx(-10 * 2 * 2)
