"""A real node for RPC tests: a FullNode over a devnet genesis (tests/consensus/devchain.py: two
pre-sealed 2 KiB miners, accounts ALICE, BOB and CAROL), its wallet holding the accounts' and the
miners' keys, blocks mined by the genesis miners, and an RpcServer on 127.0.0.1 serving every method.

`mine(node)` makes the next tipset (with the pool's pending messages) the head, as the mining loop
will; `settle(node)` mines two, so that what the first included has executed and shows in the parent
state of the head, which is what State methods read. `mine_scenario(node)` puts the transfers the
Chain*, Mpool* and Wallet* tests compare with on chain; `transfer` signs one.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import trio

from actors.builtin import STORAGE_MARKET_ACTOR_ADDR
from actors.market.types import ClientDealProposal, DealProposal, MarketMethod, PublishStorageDealsParams
from chain.consensus.producer import SectorReader
from chain.consensus.validation import validate_block
from chain.consensus.weight import weight_of
from chain.crypto.keys import PrivateKey
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.mpool.push import message_to_push
from chain.params import DEVNET
from chain.types.address import Address
from chain.types.message import Message, SignedMessage, sign_message
from chain.types.tipset import TipSet
from node.fullnode import FullNode, in_memory_full_node
from node.genesis import Genesis
from node.keystore import Keystore
from node.wallet import Wallet
from proofs.commp import commp_of_bytes
from rpc.auth import create_token, perms_up_to
from rpc.client import HttpClient
from rpc.methods import full_node_registry
from rpc.server import BoundAddress, RpcServer
from tests.consensus.devchain import ALICE, BOB, CAROL, genesis_of, presealed_block

SECRET: Final = b"s" * 32
ADMIN_TOKEN: Final = create_token(SECRET, perms_up_to("admin"))
MAX_NULL_ROUNDS: Final = 50


def devnet_genesis() -> Genesis:
    return genesis_of()


def new_node(keystore_dir: Path) -> FullNode:
    """A node over the devnet genesis whose wallet holds the accounts' and the miners' worker keys."""
    genesis = devnet_genesis()
    wallet = Wallet(Keystore.create(keystore_dir))
    for key in (ALICE, BOB, CAROL, *(m.worker_key for m in genesis.miners)):
        wallet.ensure_key(key)
    return in_memory_full_node(genesis, wallet, policy=DEVNET)


def mine(
    node: FullNode,
    skip: int = 0,
    *,
    genesis: Genesis | None = None,
    with_messages: bool = True,
    read_sector: SectorReader | None = None,
) -> TipSet:
    """Mine the next tipset with the genesis miners (the devnet's unless said; epochs nobody wins are
    null rounds, and so are the first `skip`), carrying the pool's pending messages unless told not
    to; each block is validated before the tipset becomes the head. Winning PoSts read the miners'
    pre-sealed sectors unless read_sector says where else."""
    genesis = genesis or devnet_genesis()
    head = node.chain.head()
    first = head.height + 1 + skip
    for epoch in range(first, first + MAX_NULL_ROUNDS):
        blocks = []
        for miner in genesis.miners:
            messages = node.mpool.select(head) if with_messages else ()
            block = presealed_block(node.state, node.beacon, miner, head, epoch, messages, read_sector)
            if block is not None:
                validate_block(node.state, node.beacon, block, now=block.header.timestamp)
                node.chain.put_messages(block.bls_messages, block.secp_messages)
                blocks.append(block.header)
        if blocks:
            ts = TipSet(tuple(blocks))
            node.state.state_of(ts)
            node.chain.set_head(ts, weight_of(node.chain.blockstore, ts))
            return ts
    raise AssertionError(f"no miner won in {MAX_NULL_ROUNDS} epochs")


def settle(node: FullNode) -> TipSet:
    """Mine until what is pending has executed and is in the head's parent state; the tipset that
    included it."""
    included = mine(node)
    mine(node)
    return included


def miner_address(index: int = 0) -> Address:
    return devnet_genesis().miners[index].id_address


def worker_address(index: int = 0) -> Address:
    return devnet_genesis().miners[index].worker


@asynccontextmanager
async def serving(node: FullNode) -> AsyncIterator[BoundAddress]:
    """An RpcServer with every full-node method over node, on a free port, stopped on exit."""
    server = RpcServer(full_node_registry(), node, secret=SECRET, host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        bound: BoundAddress = await nursery.start(server.run)
        try:
            yield bound
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def clients(
    bound: BoundAddress, token: str | None = ADMIN_TOKEN
) -> AsyncIterator[tuple[HttpClient, HttpClient]]:
    """(v0, v1) clients with the given token (admin by default)."""
    async with (
        HttpClient(bound.url("/rpc/v0"), token=token) as v0,
        HttpClient(bound.url("/rpc/v1"), token=token) as v1,
    ):
        yield v0, v1


# -- a chain with a multisig, market funds and a deal, made through the RPC methods ------------------------

FIL: Final = 10**18
ALICE_ADDR: Final = Address.of_key(ALICE)
BOB_ADDR: Final = Address.of_key(BOB)
CAROL_ADDR: Final = Address.of_key(CAROL)
MSIG_VALUE: Final = 100 * FIL
MSIG_UNLOCK: Final = 200  # epochs over which the multisig's initial balance vests
CLIENT_ESCROW: Final = 5 * FIL
PROVIDER_ESCROW: Final = 5 * FIL
WITHDRAWN: Final = 1 * FIL
PROVIDER_COLLATERAL: Final = 10**17


@dataclass(frozen=True)
class Scenario:
    """What build_scenario did, for tests to compare the node's answers with."""

    node: FullNode
    msig: Address  # the multisig's ID address
    msig_robust: Address
    create: CID  # MsigCreate (v0) by ALICE: signers ALICE and BOB, 2 approvals, 100 FIL vesting
    proposals: tuple[CID, CID]  # ALICE proposes 1 FIL then 2 FIL to CAROL (transactions 0 and 1)
    approve: CID  # BOB approves transaction 0, which executes
    add_client: CID  # MarketAddBalance: ALICE escrows 5 FIL for herself
    add_provider: CID  # the miner's worker escrows 5 FIL for the miner
    withdraw: CID  # MarketWithdraw: ALICE takes 1 FIL back
    publish: CID  # PublishStorageDeals by the worker: one deal, ALICE as client
    deal_id: int
    deal: DealProposal


def _deal(node: FullNode) -> ClientDealProposal:
    piece = commp_of_bytes(bytes(range(256)) * 4)
    start = node.chain.head().height + 300  # far enough that no cron removes it while tests read it
    proposal = DealProposal(
        piece_cid_v1(piece.commitment),
        piece.padded_size,
        False,
        ALICE_ADDR,
        miner_address(),
        "rpc-state test deal",
        start,
        start + 100,
        10**9,
        PROVIDER_COLLATERAL,
        0,
    )
    return ClientDealProposal(proposal, ALICE.sign(proposal.signing_bytes()))


async def build_scenario(node: FullNode) -> Scenario:
    mine(node)
    async with serving(node) as bound, clients(bound) as (v0, v1):
        signers = [str(ALICE_ADDR), str(BOB_ADDR)]
        create = CID.parse(
            (await v0.call("MsigCreate", 2, signers, MSIG_UNLOCK, str(MSIG_VALUE), str(ALICE_ADDR), "0"))["/"]
        )
        add_client = await v0.call("MarketAddBalance", str(ALICE_ADDR), str(ALICE_ADDR), str(CLIENT_ESCROW))
        add_provider = await v0.call(
            "MarketAddBalance", str(worker_address()), str(miner_address()), str(PROVIDER_ESCROW)
        )
        settle(node)
        created = await v1.call("StateWaitMsg", {"/": str(create)}, 0, None, False)
        msig = Address.parse(created["ReturnDec"]["IDAddress"])
        robust = Address.parse(created["ReturnDec"]["RobustAddress"])

        proposals = [
            await v0.call("MsigPropose", str(msig), str(CAROL_ADDR), str(amount), str(ALICE_ADDR), 0, None)
            for amount in (1 * FIL, 2 * FIL)
        ]
        settle(node)

        approve = await v0.call("MsigApprove", str(msig), 0, str(BOB_ADDR))
        withdraw = await v0.call("MarketWithdraw", str(ALICE_ADDR), str(ALICE_ADDR), str(WITHDRAWN))
        deal = _deal(node)
        publish_msg = message_to_push(
            STORAGE_MARKET_ACTOR_ADDR,
            worker_address(),
            method=MarketMethod.PublishStorageDeals,
            params=PublishStorageDealsParams((deal,)),
        )
        publish = (await node.run_sync(node.pusher.push_message, publish_msg)).cid()
        settle(node)
        published = await v1.call("StateWaitMsg", {"/": str(publish)}, 0, None, False)
        (deal_id,) = published["ReturnDec"]["IDs"]

    def cid(raw: dict[str, str]) -> CID:
        return CID.parse(raw["/"])

    return Scenario(
        node=node,
        msig=msig,
        msig_robust=robust,
        create=create,
        proposals=(cid(proposals[0]), cid(proposals[1])),
        approve=cid(approve),
        add_client=cid(add_client),
        add_provider=cid(add_provider),
        withdraw=cid(withdraw),
        publish=publish,
        deal_id=deal_id,
        deal=deal.proposal,
    )


# -- transfers on chain, for the Chain*, Mpool*, Gas* and Wallet* tests ---------------------------------

GAS_LIMIT: Final = 10_000_000
FEE_CAP: Final = 200_000_000  # above the genesis base fee, as a wallet would set it
PREMIUM: Final = 1_000


def transfer(key: PrivateKey, nonce: int, to: Address, value: int = 1_000, **changes: Any) -> SignedMessage:
    """A transfer signed by key, with fees a wallet would set; changes override message fields."""
    msg = Message(
        to=to,
        from_=Address.of_key(key),
        nonce=nonce,
        value=value,
        gas_limit=GAS_LIMIT,
        gas_fee_cap=FEE_CAP,
        gas_premium=PREMIUM,
        method=0,
    )
    return sign_message(replace(msg, **changes), key)


@dataclass(frozen=True)
class Mined:
    """What mine_scenario put on chain: the tipsets (oldest first) and the messages of the first."""

    tipsets: list[TipSet]
    secp: list[SignedMessage]
    bls: list[SignedMessage]


def mine_scenario(node: FullNode) -> Mined:
    """Two secp256k1 transfers from ALICE and one BLS transfer from BOB in the first tipset mined, then
    two empty tipsets on top (the first tipset's receipts are in the second's header), the last after
    at least one null round."""
    secp = [transfer(ALICE, n, CAROL_ADDR, 1_000 + n) for n in range(2)]
    bls = [transfer(BOB, 0, CAROL_ADDR, 5_000)]
    for signed in secp + bls:
        node.mpool.push(signed)
    tipsets = [mine(node)]
    assert node.mpool.pending()[0] == []
    tipsets += [mine(node), mine(node, skip=1)]
    return Mined(tipsets, secp, bls)


@dataclass(frozen=True)
class Served:
    """A node and its RPC server."""

    node: FullNode
    bound: BoundAddress
    mined: Mined

    def url(self, api: str = "v1", scheme: str = "http") -> str:
        return self.bound.url(f"/rpc/{api}", scheme=scheme)
