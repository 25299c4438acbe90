"""A client's piece really stored by a new miner on the test node: what the deal and sealing flows will
do, done here by hand so the collect routes have a proven sector whose CommD holds the piece.

The provider creates a 2 KiB miner (power.CreateMiner), publishes a deal for the client's piece
(PublishStorageDeals with the client's signature; its price is zero since vouchers pay for it), seals
the piece for real, pre-commits the sector with the deal, and proves it after the interactive seed;
the sector's unsealed CID is then the CommD of the piece's layout, and proofs.pip proves the piece in it.
"""

import hashlib
from dataclasses import dataclass
from typing import Final

from actors import builtin
from actors.market.types import ClientDealProposal, DealProposal, MarketMethod, PublishStorageDealsParams
from actors.market.types import PublishStorageDealsReturn as PublishReturn
from actors.miner.state import PreCommits
from actors.miner.types import MinerMethod, PreCommitSectorParams, ProveCommitSectorParams
from actors.power.types import CreateMinerParams, CreateMinerReturn, PowerMethod
from chain.crypto.randomness import DomainSeparationTag
from chain.encoding import dagcbor
from chain.encoding.commcid import piece_cid_v1
from chain.mpool.push import message_to_push
from chain.stmgr import miners
from chain.types.address import Address
from chain.types.message import Message
from chain.types.sector import PieceInfo
from chain.vm.syscalls import sealed_cid
from node.fullnode import FullNode
from proofs import commp, fr32, pip, seal
from proofs.registered import make_prover_id
from tests.markets.devnode import CLIENT, FIL, PROVIDER, WORKER, Miner

SEAL_PROOF: Final = 5  # StackedDrg2KiBV1_1
POST_PROOF: Final = 10  # StackedDrgWindow2KiBV1_1
SECTOR_SIZE: Final = 2048
SECTOR_NUMBER: Final = 1
PROVIDER_COLLATERAL: Final = 20_000 * FIL


@dataclass(frozen=True)
class StoredPiece:
    miner: Address
    sector_number: int
    piece: PieceInfo
    proof: bytes  # proofs.pip bytes: the piece at offset 0 of the sector
    deal_id: int
    comm_d: bytes


async def _ok(miner: Miner, node: FullNode, msg: Message) -> bytes:
    signed = await node.run_sync(node.pusher.push_message, msg)
    lookup = await miner.land(node, signed.cid())
    assert lookup.receipt.exit_code == 0, lookup.receipt
    return lookup.receipt.return_data


def piece_payload() -> bytes:
    """1,016 bytes of data: a 1 KiB piece once padded, so the 2 KiB sector holds it and a zero piece."""
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32))[:1016]


async def store_piece(miner: Miner, provider: FullNode, client: FullNode) -> StoredPiece:
    """The provider (PROVIDER owns the miner, WORKER works it) stores the client's piece; see the
    module doc."""
    owner, worker, client_address = PROVIDER, WORKER, CLIENT
    created = CreateMinerReturn.from_bytes(
        await _ok(
            miner,
            provider,
            message_to_push(
                builtin.STORAGE_POWER_ACTOR_ADDR,
                owner,
                method=PowerMethod.CreateMiner,
                params=CreateMinerParams(owner, worker, POST_PROOF, b"", ()),
                value=1_000 * FIL,
            ),
        )
    )
    maddr = created.id_address

    payload = piece_payload()
    piece = commp.commp_of_bytes(payload)
    piece_cid = piece_cid_v1(piece.commitment)
    sector_data = fr32.pad(payload) + bytes(SECTOR_SIZE - piece.padded_size)
    head = provider.chain.head()
    deal = DealProposal(
        piece_cid,
        piece.padded_size,
        False,
        client_address,
        maddr,
        "paid by vouchers",
        head.height + 80,
        head.height + 200,
        0,  # the payment channel pays for it
        PROVIDER_COLLATERAL,
        0,
    )
    await _ok(
        miner,
        provider,
        message_to_push(
            builtin.STORAGE_MARKET_ACTOR_ADDR,
            owner,
            method=MarketMethod.AddBalance,
            params=maddr,
            value=PROVIDER_COLLATERAL,
        ),
    )
    signature = client.wallet.sign(client_address, deal.signing_bytes())
    publish = PublishStorageDealsParams((ClientDealProposal(deal, signature),))
    published = PublishReturn.from_bytes(
        await _ok(
            miner,
            provider,
            message_to_push(
                builtin.STORAGE_MARKET_ACTOR_ADDR,
                worker,
                method=MarketMethod.PublishStorageDeals,
                params=publish,
            ),
        )
    )
    (deal_id,) = published.ids

    entropy = dagcbor.encode(maddr.to_cbor())
    head = provider.chain.head()
    rand_epoch = head.height
    ticket = provider.state.draw_chain_randomness(
        head, DomainSeparationTag.SealRandomness, rand_epoch, entropy
    )
    sealed = seal.seal(SEAL_PROOF, sector_data, make_prover_id(maddr.id), SECTOR_NUMBER, ticket)
    precommit = PreCommitSectorParams(
        SEAL_PROOF, SECTOR_NUMBER, sealed_cid(sealed.comm_r), rand_epoch, (deal_id,), head.height + 1_000
    )
    await _ok(
        miner, provider, message_to_push(maddr, owner, method=MinerMethod.PreCommitSector, params=precommit)
    )
    head = provider.chain.head()
    tree = provider.state.tree(provider.state.state_of(head).state_root)
    state = miners.miner_state(tree, maddr)
    info = PreCommits.load(tree.store, state.pre_committed_sectors).get(SECTOR_NUMBER)
    assert info is not None
    seed_epoch = info.pre_commit_epoch + provider.policy.pre_commit_challenge_delay
    await miner.mine_until(lambda: provider.chain.head().height > seed_epoch)
    seed = provider.state.draw_beacon_randomness(
        provider.chain.head(), DomainSeparationTag.InteractiveSealChallengeSeed, seed_epoch, entropy
    )
    prove = ProveCommitSectorParams(SECTOR_NUMBER, seal.prove_commit(sealed, seed).to_bytes())
    await _ok(
        miner, provider, message_to_push(maddr, owner, method=MinerMethod.ProveCommitSector, params=prove)
    )

    proof = pip.prove_piece_inclusion([piece.piece_info()], SECTOR_SIZE, 0).to_bytes()
    return StoredPiece(
        maddr, SECTOR_NUMBER, PieceInfo(piece.padded_size, piece_cid), proof, deal_id, sealed.comm_d
    )
