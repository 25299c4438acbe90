"""The Client* methods as Lotus v1.26 served them (node/impl/client/client.go), over the node's market
services (node/markets/services.py, `FullNode.markets`), and the provider's deal methods.

Client: ClientImport, ClientRemoveImport, ClientListImports, ClientHasLocal, ClientDealPieceCID,
ClientDealSize, ClientCalcCommP, ClientStartDeal, ClientGetDealInfo, ClientListDeals, ClientGetDealStatus,
ClientQueryAsk (v1: api.StorageAsk; v0: the bare ask), ClientFindData, ClientMinerQueryOffer,
ClientRetrieve (v1: `{DealID}`, then ClientRetrieveWait / ClientExport; v0: with the output FileRef),
ClientRetrieveWait, ClientExport. Names, parameter counts and permissions are Lotus's. Lotus has no
method for a deal's piece inclusion proof; filpy's `Filpy.ClientDealInclusionProof(proposal)` gives the
provider's proof with the sector's CommD on chain, so that a client can check it itself.

Provider (a node serving a miner): MarketSetAsk, MarketGetAsk, MarketSetRetrievalAsk and
MarketGetRetrievalAsk with lotus-miner's shapes, and
filpy's `Filpy.StorageDealsList`, `Filpy.StorageDeal(uuid)` and `Filpy.StorageDealImportData(uuid,
path)` (Boost's offline-deal import) for `filpy miner deals list|import-data`.
"""

import contextlib
import uuid
from functools import partial
from pathlib import Path

from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.encoding.schema import BigInt, ChainEpoch, Uint64
from chain.types.address import Address
from node.fullnode import FullNode
from node.markets.deal_states import DESCRIPTIONS, StorageDealStatus, expected_duration, state_name
from node.markets.deal_store import ClientDealRecord, ProviderDealRecord
from node.markets.imports import DataCIDSize, ImportStoreError
from node.markets.piecestore import RetrievalAsk
from node.markets.retrieval_client import Candidate, QueryOffer, find_data
from node.markets.retrievals import RetrievalError, RetrievalOrder
from node.markets.services import Markets
from node.markets.storage_ask import AskError, set_ask
from node.markets.storage_client import ClientError, DealRequest
from node.markets.storage_provider import ProviderError, StorageProvider
from node.markets.storage_types import DEAL_PROTOCOL, SignedStorageAsk, StorageAsk
from node.markets.unixfs import FileImportError
from node.p2p.protocols import PeerID
from proofs.commp import PieceError, commp_of_stream, unpadded_piece_size
from rpc.errors import RpcError, answer_errors
from rpc.methods.client_types import (
    CommPRet,
    DataRef,
    DataSize,
    DealInclusionProof,
    DealInfo,
    DealLog,
    DealStage,
    DealStages,
    ExportRef,
    FileRef,
    ImportInfo,
    ImportRes,
    ProviderDealInfo,
    RetrievalRes,
    StartDealParams,
    StorageAskResponse,
    creation_time,
)
from rpc.registry import ADMIN, READ, WRITE, method

NAMESPACE = "Filpy"


def _markets(node: FullNode) -> Markets:
    if node.markets is None:
        raise RpcError("this node runs no storage market services")
    return node.markets


def _provider(node: FullNode) -> StorageProvider:
    provider = _markets(node).provider
    if provider is None:
        raise RpcError("this node serves no miner: it takes no storage deals")
    return provider


# == imports =============================================================================================


@method("ClientImport", perm=ADMIN)
async def client_import(node: FullNode, ref: FileRef) -> ImportRes:
    """Import a file (as `ipfs add --cid-version=1` would) or a CAR (IsCAR) for storage deals."""
    imports = _markets(node).imports
    with answer_errors(
        ImportStoreError, FileImportError, OSError, ValueError, prefix=f"failed to import {ref.path}"
    ):
        made = await node.run_sync(imports.import_car if ref.is_car else imports.import_file, Path(ref.path))
    return ImportRes(made.root, made.import_id)


@method("ClientRemoveImport", perm=ADMIN)
async def client_remove_import(node: FullNode, import_id: Uint64) -> None:
    """Remove an import (its CAR and record)."""
    if not await node.run_sync(_markets(node).imports.remove, import_id):
        raise RpcError(f"no import {import_id}")


@method("ClientListImports", perm=WRITE)
async def client_list_imports(node: FullNode) -> tuple[ImportInfo, ...]:
    """Every import of this node's client."""
    return tuple(
        ImportInfo(
            key=i.import_id,
            root=i.root,
            source="import",
            file_path=i.source,
            car_path=str(i.car_path),
        )
        for i in _markets(node).imports.imports()
    )


@method("ClientHasLocal", perm=WRITE)
async def client_has_local(node: FullNode, root: CID) -> bool:
    """Whether an import has this root."""
    return bool(_markets(node).imports.by_root(root))


@method("ClientDealPieceCID", perm=READ)
async def client_deal_piece_cid(node: FullNode, root: CID) -> DataCIDSize:
    """The piece CID and sizes a deal for this import's root proposes."""
    with answer_errors(ImportStoreError):
        return _markets(node).imports.deal_piece_cid(root)


@method("ClientDealSize", perm=READ)
async def client_deal_size(node: FullNode, root: CID) -> DataSize:
    """The payload (CAR) and padded piece sizes of an import's root."""
    data = await client_deal_piece_cid(node, root)
    return DataSize(data.payload_size, data.piece_size)


@method("ClientCalcCommP", perm=WRITE)
async def client_calc_commp(node: FullNode, inpath: str) -> CommPRet:
    """The piece CID of a file's bytes as they are, and its unpadded piece size."""

    def calc() -> CommPRet:
        with Path(inpath).open("rb") as f:
            piece = commp_of_stream(f)
        return CommPRet(piece_cid_v1(piece.commitment), unpadded_piece_size(piece.padded_size))

    with answer_errors(OSError, PieceError, prefix=f"cannot compute the piece CID of {inpath}"):
        return await node.run_sync(calc)


# == deals ===============================================================================================


def deal_info(record: ClientDealRecord) -> DealInfo:
    """A client deal as Lotus's DealInfo: State the status number, DealStages one stage per state
    entered (its events as logs, each with the chain epoch)."""
    proposal = record.client_deal_proposal.proposal
    stages: list[DealStage] = []
    for event in record.events:
        when = creation_time(event.time)
        log = f"epoch {event.epoch}: {event.message}" if event.message else f"epoch {event.epoch}"
        if stages and stages[-1].name == event.state.name:
            last = stages[-1]
            stages[-1] = DealStage(
                name=last.name,
                description=last.description,
                expected_duration=last.expected_duration,
                created_time=last.created_time,
                updated_time=when,
                logs=(*last.logs, DealLog(log, when)),
            )
            continue
        stages.append(
            DealStage(
                name=event.state.name,
                description=DESCRIPTIONS.get(event.state, ""),
                expected_duration=expected_duration(event.state),
                created_time=when,
                updated_time=when,
                logs=(DealLog(log, when),),
            )
        )
    return DealInfo(
        proposal_cid=record.proposal_cid,
        state=int(record.state),
        message=record.message,
        deal_stages=DealStages(tuple(stages)),
        provider=proposal.provider,
        data_ref=DataRef(
            transfer_type=record.transfer_type,
            root=record.root,
            piece_cid=proposal.piece_cid,
            piece_size=unpadded_piece_size(proposal.piece_size),
        ),
        piece_cid=proposal.piece_cid,
        size=unpadded_piece_size(proposal.piece_size),
        price_per_epoch=proposal.storage_price_per_epoch,
        duration=proposal.duration,
        deal_id=record.deal_id or 0,
        creation_time=creation_time(record.created),
        verified=proposal.verified_deal,
    )


@method("ClientStartDeal", perm=ADMIN)
async def client_start_deal(node: FullNode, params: StartDealParams) -> CID:
    """Propose a storage deal to a miner; the proposal CID (its progress: ClientGetDealInfo)."""
    data = params.data
    request = DealRequest(
        root=data.root,
        wallet=params.wallet,
        miner=params.miner,
        epoch_price=params.epoch_price,
        min_blocks_duration=params.min_blocks_duration,
        transfer_type=data.transfer_type,
        piece_cid=data.piece_cid,
        piece_size=data.piece_size,
        provider_collateral=params.provider_collateral,
        start_epoch=params.deal_start_epoch,
        fast_retrieval=params.fast_retrieval,
        verified=params.verified_deal,
        add_funds=params.add_funds,
    )
    with answer_errors(ClientError, prefix="failed to start deal"):
        return await _markets(node).client.start_deal(request)


@method("ClientGetDealInfo", perm=READ)
async def client_get_deal_info(node: FullNode, proposal: CID) -> DealInfo:
    """A deal of this client by proposal CID: its state, message and history."""
    with answer_errors(ClientError):
        return deal_info(_markets(node).client.deal(proposal))


@method("ClientDealInclusionProof", perm=READ, namespace=NAMESPACE)
async def client_deal_inclusion_proof(node: FullNode, proposal: CID) -> DealInclusionProof:
    """A deal of this client's piece inclusion proof from its provider, with the sector's CommD on chain
    and whether the proof shows the piece in it (VerifyPIP), for a client to check it itself."""
    client = _markets(node).client
    with answer_errors(ClientError):
        record = client.deal(proposal)
    head = node.chain.head()
    check = await node.run_sync(client.check_inclusion, record, head)
    deal = record.client_deal_proposal.proposal
    return DealInclusionProof(
        proposal_cid=proposal,
        miner=deal.provider,
        deal_id=record.deal_id,
        sector_number=record.sector_number,
        sector_size=check.sector_size,
        piece_cid=deal.piece_cid,
        piece_size=deal.piece_size,
        offset=record.piece_offset,
        proof=record.inclusion_proof,
        comm_d=check.comm_d,
        verified=check.problem is None,
        message=(check.problem or "").removeprefix("bad:").strip(),
    )


@method("ClientListDeals", perm=WRITE)
async def client_list_deals(node: FullNode) -> tuple[DealInfo, ...]:
    """Every deal of this client, oldest first."""
    return tuple(deal_info(r) for r in _markets(node).client.deals())


@method("ClientGetDealStatus", perm=READ)
async def client_get_deal_status(node: FullNode, status_code: Uint64) -> str:
    """The name of a deal status number (e.g. 7: StorageDealActive)."""
    with answer_errors(ValueError):
        return state_name(status_code)


def _peer(text: str) -> PeerID:
    try:
        return PeerID.from_base58(text)
    except Exception:  # py-libp2p raises several kinds for bad base58
        raise RpcError(f"{text!r} is not a peer ID") from None


async def _query_ask(node: FullNode, peer: str, miner: Address) -> StorageAsk:
    with answer_errors(ClientError, prefix="failed to query ask"):
        return await _markets(node).client.query_ask(_peer(peer), miner)


@method("ClientQueryAsk", perm=READ, api="v1")
async def client_query_ask(node: FullNode, peer: str, miner: Address) -> StorageAskResponse:
    """The miner's signed ask from a peer, checked against the miner's worker key, and the deal
    protocols the peer speaks."""
    ask = await _query_ask(node, peer, miner)
    protocols = sorted(
        p for p in _markets(node).host.protocols(_peer(peer)) if p.startswith("/fil/storage/mk/")
    )
    return StorageAskResponse(ask, tuple(protocols) or (str(DEAL_PROTOCOL),))


@method("ClientQueryAsk", perm=READ, api="v0")
async def client_query_ask_v0(node: FullNode, peer: str, miner: Address) -> StorageAsk:
    """The miner's signed ask from a peer, checked against the miner's worker key."""
    return await _query_ask(node, peer, miner)


def _candidates(node: FullNode, root: CID) -> list[Candidate]:
    """The providers this client stored root with (live deals), one per miner."""
    seen: dict[Address, Candidate] = {}
    for record in _markets(node).client.deals():
        if record.root != root or record.state in (
            StorageDealStatus.StorageDealError,
            StorageDealStatus.StorageDealProposalRejected,
        ):
            continue
        proposal = record.client_deal_proposal.proposal
        seen.setdefault(
            proposal.provider, Candidate(proposal.provider, _peer(record.provider_peer), proposal.piece_cid)
        )
    return list(seen.values())


@method("ClientFindData", perm=READ)
async def client_find_data(node: FullNode, root: CID, piece: CID | None) -> tuple[QueryOffer, ...]:
    """Retrieval offers for root from the providers this client made deals with."""
    offers = await find_data(_markets(node).host, root, piece, _candidates(node, root), partial(_reach, node))
    return tuple(offers)


async def _reach(node: FullNode, candidate: Candidate) -> None:
    """Connect to the candidate's peer at its miner's on-chain addresses. A failure is not raised: the
    query that follows fails too, and its offer carries the error for that miner alone."""
    with contextlib.suppress(RetrievalError):
        await _markets(node).retrievals.provider_peer(candidate.miner, candidate.peer)


@method("ClientMinerQueryOffer", perm=READ)
async def client_miner_query_offer(
    node: FullNode, miner: Address, root: CID, piece: CID | None
) -> QueryOffer:
    """A retrieval offer for root from one miner (its peer from the chain)."""
    head = node.chain.head()
    info = await node.run_sync(node.state.miner_info, miner, head)
    if not info.peer_id:
        raise RpcError(f"miner {miner} has no peer ID on chain")
    candidate = Candidate(miner, PeerID(info.peer_id), piece)
    (offer,) = await find_data(_markets(node).host, root, piece, [candidate], partial(_reach, node))
    return offer


# == retrieval ===========================================================================================


@method("ClientRetrieve", perm=ADMIN, api="v1")
async def client_retrieve(node: FullNode, order: RetrievalOrder) -> RetrievalRes:
    """Retrieve root's DAG from the order's miner (verified block by block) into this node's retrievals:
    over HTTP when the order pays nothing, else as a retrieval deal paid by payment-channel vouchers;
    its retrieval ID (ClientRetrieveWait, ClientExport)."""
    with answer_errors(RetrievalError, prefix="retrieval failed"):
        deal_id = await _markets(node).retrievals.retrieve(order)
    return RetrievalRes(deal_id)


@method("ClientRetrieve", perm=ADMIN, api="v0")
async def client_retrieve_v0(node: FullNode, order: RetrievalOrder, ref: FileRef | None) -> None:
    """Retrieve root's DAG from the order's miner (as v1's ClientRetrieve) into ref (the file, or a CAR
    with IsCAR)."""
    retrievals = _markets(node).retrievals
    with answer_errors(RetrievalError, prefix="retrieval failed"):
        deal_id = await retrievals.retrieve(order)
        if ref is not None:
            await retrievals.export(deal_id, order.root, Path(ref.path), car=ref.is_car)


@method("ClientRetrieveWait", perm=ADMIN, api="v1")
async def client_retrieve_wait(node: FullNode, deal_id: Uint64) -> None:
    """Return once the retrieval has finished (filpy's ClientRetrieve returns finished)."""
    with answer_errors(RetrievalError):
        _markets(node).retrievals.get(deal_id)


@method("ClientExport", perm=ADMIN, api="v1")
async def client_export(node: FullNode, export_ref: ExportRef, file_ref: FileRef) -> None:
    """Write a retrieved DAG (by its retrieval ID) or an import's (by root) to a file, or as a CAR."""
    with answer_errors(RetrievalError, prefix="export failed"):
        await _markets(node).retrievals.export(
            export_ref.deal_id or None, export_ref.root, Path(file_ref.path), car=file_ref.is_car
        )


# == the provider ========================================================================================


@method("MarketSetAsk", perm=ADMIN)
async def market_set_ask(
    node: FullNode,
    price: BigInt,
    verified_price: BigInt,
    duration: ChainEpoch,
    min_piece_size: Uint64,
    max_piece_size: Uint64,
) -> None:
    """Set the storage ask of the miner (prices in attoFIL per GiB per epoch; sizes padded; duration in
    epochs), signed by its worker; on a node that provides for several miners, of each of them."""
    _provider(node)
    providers = _markets(node).providers.values()
    with answer_errors(AskError):
        for provider in providers:
            await set_ask(
                node,
                provider.asks,
                provider.miner,
                price=price,
                verified_price=verified_price,
                duration=duration,
                min_piece_size=min_piece_size,
                max_piece_size=max_piece_size,
            )
    announce = _markets(node).announce_provider
    if announce is not None:  # a provider with an ask is one clients must be able to find
        announce()


@method("MarketGetAsk", perm=READ)
async def market_get_ask(node: FullNode) -> SignedStorageAsk | None:
    """The miner's current signed ask (null before one is set); of a node that provides for several
    miners, the one most recently created from it, else the first."""
    provider = _provider(node)
    return await node.run_sync(provider.asks.get, provider.miner)


@method("MarketGetAsks", perm=READ, namespace=NAMESPACE)
async def market_get_asks(node: FullNode) -> tuple[SignedStorageAsk, ...]:
    """The signed asks of every miner this node provides for (MarketGetAsk gives one miner's), in
    the order the node took them; a miner without an ask yet is left out."""
    _provider(node)
    asks = []
    for provider in _markets(node).providers.values():
        ask = await node.run_sync(provider.asks.get, provider.miner)
        if ask is not None:
            asks.append(ask)
    return tuple(asks)


@method("MarketSetRetrievalAsk", perm=ADMIN)
async def market_set_retrieval_ask(node: FullNode, ask: RetrievalAsk) -> None:
    """Set the miner's retrieval terms (price per byte, unseal price, payment interval and its
    increase): quoted by retrieval queries, enforced on retrieval deals; priced data is no longer
    served free over HTTP."""
    _provider(node)
    with answer_errors(ValueError):
        await node.run_sync(_markets(node).set_retrieval_ask, ask)


@method("MarketGetRetrievalAsk", perm=READ)
async def market_get_retrieval_ask(node: FullNode) -> RetrievalAsk:
    """The miner's retrieval terms (free unless set)."""
    _provider(node)
    return _markets(node).retrieval_ask


def provider_deal_info(provider: StorageProvider, record: ProviderDealRecord) -> ProviderDealInfo:
    proposal = record.client_deal_proposal.proposal
    return ProviderDealInfo(
        deal_uuid=str(record.uuid),
        created_at=creation_time(record.created),
        state=record.state.name,
        message=record.message,
        client=proposal.client,
        client_peer_id=record.client_peer,
        signed_proposal_cid=record.signed_proposal_cid,
        piece_cid=proposal.piece_cid,
        piece_size=proposal.piece_size,
        start_epoch=proposal.start_epoch,
        end_epoch=proposal.end_epoch,
        price_per_epoch=proposal.storage_price_per_epoch,
        provider_collateral=proposal.provider_collateral,
        is_offline=record.is_offline,
        transfer_type=record.transfer.type if not record.is_offline else "manual",
        transfer_size=record.transfer.size,
        bytes_received=provider.bytes_received(record),
        publish_cid=record.publish_cid,
        chain_deal_id=-1 if record.deal_id is None else record.deal_id,
        sector_number=-1 if record.sector_number is None else record.sector_number,
        sealing_status=record.sealing_state,
    )


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise RpcError(f"{text!r} is not a deal UUID") from None


def _deal_provider(node: FullNode, deal: uuid.UUID) -> StorageProvider:
    """The provider that holds the deal (the node may provide for several miners)."""
    _provider(node)
    for provider in _markets(node).providers.values():
        try:
            provider.deal(deal)
            return provider
        except ProviderError:
            continue
    raise RpcError(f"no deal {deal}")


@method("StorageDealsList", perm=READ, namespace=NAMESPACE)
async def storage_deals_list(node: FullNode) -> tuple[ProviderDealInfo, ...]:
    """Every deal the node's miners were offered and accepted, oldest first."""
    _provider(node)
    deals = [(p, r) for p in _markets(node).providers.values() for r in p.deals()]
    return tuple(provider_deal_info(p, r) for p, r in sorted(deals, key=lambda pr: pr[1].created))


@method("StorageDeal", perm=READ, namespace=NAMESPACE)
async def storage_deal(node: FullNode, deal_uuid: str) -> ProviderDealInfo:
    """One of the miners' deals by UUID."""
    deal = _uuid(deal_uuid)
    provider = _deal_provider(node, deal)
    return provider_deal_info(provider, provider.deal(deal))


@method("StorageDealImportData", perm=ADMIN, namespace=NAMESPACE)
async def storage_deal_import_data(node: FullNode, deal_uuid: str, path: str) -> ProviderDealInfo:
    """The data of an offline deal, from a CAR on this machine; checked against the deal's piece CID."""
    deal = _uuid(deal_uuid)
    provider = _deal_provider(node, deal)
    with answer_errors(ProviderError):
        record = await provider.import_data(deal, Path(path))
    return provider_deal_info(provider, record)
