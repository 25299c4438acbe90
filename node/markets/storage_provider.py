"""The storage provider: takes deal proposals for one miner, pulls the data, publishes the deals, hands
their pieces to the sealing pipeline and follows each deal to its end.

A service (`run`) serving `/fil/storage/mk/1.2.0`, `/fil/storage/status/1.2.0` and
`/fil/storage/ask/1.1.0` on the node's libp2p host (`register(host)`). A proposal is checked
(node/markets/deal_checks.py) against the chain at the head and the provider's ask; a refusal is answered
with its reason and nothing is kept. An accepted deal is recorded (node/markets/deal_store.py) before
the answer goes out, and then driven step by step, each step recorded once its work is done:

    ProposalAccepted -> Transferring (HTTP pull) | WaitingForData (offline: import_data)
      -> VerifyData (the CAR into the piece store, its piece CID recomputed and compared)
      -> ReserveProviderFunds [-> ProviderFunding: an AddBalance for the collateral]
      -> Publish (queued for the batch) -> Publishing (the message is in the pool)
      -> Staged (the piece is in a sector: its number and offset) -> Sealing -> Active
      -> Expired | Slashed

Failures end in Error with the reason. From Staged on, each new head is read: the sector's progress from
the pipeline (its state, the piece's inclusion proof once the sector is packed) and the deal's state from
the market actor (active once its sector is proven; slashed if its sector is terminated or it was not
activated by its start epoch; expired after its end epoch). An expired or slashed deal's piece stops
being served.

Restarts: `run` resumes every live deal from its recorded state. A download resumes from what is on disk
(HTTP Range); a deal found in Publish (the process died between sending the message and recording it)
looks for its message in the pool and its deal on chain before publishing again; a deal in Publishing
waits for its message; a piece already in a sector is found there and not added twice.
"""

import os
import shutil
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import structlog
import trio

from actors import builtin
from actors.market.types import (
    ClientDealProposal,
    MarketMethod,
    PublishStorageDealsParams,
    PublishStorageDealsReturn,
)
from actors.miner.types import ChangeMultiaddrsParams, ChangePeerIDParams, MinerMethod
from chain.chainstore.reorg import HeadChange
from chain.crypto.signature import is_valid
from chain.encoding.carry import carried
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.mpool.push import message_to_push
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address
from chain.types.message import Message, SignedMessage
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from node.daemon import TaskStatus
from node.fullnode import FullNode
from node.markets.chain_view import available_escrow, collateral_bounds
from node.markets.deal_checks import ChainFacts, check_proposal
from node.markets.deal_driver import DealDriver
from node.markets.deal_publisher import DealPublisher, PublishFailed, published_ids
from node.markets.deal_sealing import DealSealer, PublishedDeal, SealingRefused, SectorPlacement
from node.markets.deal_states import (
    PROVIDER_TRANSITIONS,
    TERMINAL,
    StorageDealStatus,
    boost_checkpoint,
    reachable,
)
from node.markets.deal_store import PROVIDER_PREFIX, DealStore, ProviderDealRecord, now_ms
from node.markets.deal_transfer import TransferFailed, download
from node.markets.deals_config import ProviderConfig
from node.markets.piecestore import PieceMismatch, PieceStore, PieceStoreError
from node.markets.provider_router import router_of
from node.markets.storage_ask import AskStore
from node.markets.storage_types import (
    DealParams,
    DealResponse,
    DealStatus,
    DealStatusRequest,
    DealStatusResponse,
    HttpRequest,
    signed_proposal_cid,
)
from node.p2p.host import Libp2pHost
from node.wallet import WalletError

S = StorageDealStatus
_log = structlog.get_logger("deals.provider")

# States a deal's driver works through; from Staged on the head follower takes over (until it ends).
_FROM_STAGED: Final = reachable(PROVIDER_TRANSITIONS, S.StorageDealStaged)
_DRIVEN: Final = reachable(PROVIDER_TRANSITIONS, S.StorageDealProposalAccepted) - _FROM_STAGED
_FOLLOWED: Final = _FROM_STAGED - TERMINAL
# Deals whose collateral the provider's escrow must cover before they are on chain: the driven ones
# whose publishing message is not yet in the pool.
_COUNTING_ON_FUNDS: Final = _DRIVEN - {S.StorageDealPublishing}
# Sealing states after which the sector's data is being sealed (Lotus's names).
_PACKING_STATES: Final = frozenset({"WaitDeals", "Packing", "AddPiece"})


class DealFailed(Exception):
    """A step of a deal that cannot succeed: the deal goes to Error with this reason."""


class ProviderError(Exception):
    """A request to the provider it refuses (unknown deal, wrong state); the message says why."""


@dataclass(frozen=True, slots=True)
class _Miner:
    worker: Address  # as the miner's info names it
    sector_size: int


class StorageProvider(DealDriver[ProviderDealRecord]):
    """See the module's docstring."""

    name = "storage-provider"

    def __init__(
        self,
        node: FullNode,
        miner: Address,
        *,
        store: DealStore[ProviderDealRecord],
        asks: AskStore,
        pieces: PieceStore,
        staging: Path,
        sealer: DealSealer,
        config: ProviderConfig | None = None,
    ) -> None:
        super().__init__(node, store)
        self.miner = miner
        self.asks = asks
        self.pieces = pieces
        self.staging = Path(staging)
        self.sealer = sealer
        self.config = config or ProviderConfig.for_policy(node.policy)
        self._info: _Miner | None = None
        self._publisher: DealPublisher | None = None
        self._received: dict[bytes, int] = {}
        self._imported: dict[bytes, trio.Event] = {}
        self._funds_lock = trio.Lock()

    @classmethod
    def open_store(cls, meta: Any) -> DealStore[ProviderDealRecord]:
        return DealStore(meta, ProviderDealRecord, PROVIDER_PREFIX, PROVIDER_TRANSITIONS)

    # == wiring ==========================================================================================

    def register(self, host: Libp2pHost) -> None:
        """Serve this miner's deals, status and ask on host (beside any other miner's the node provides
        for on it: node/markets/provider_router.py)."""
        router_of(host, self.node.run_sync).add(self)

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        head = self.node.chain.head()
        info = await self.node.run_sync(self.node.state.miner_info, self.miner, head)
        self._info = _Miner(info.worker, info.sector_size)
        self._publisher = DealPublisher(
            self.node,
            info.worker,
            period=self.config.publish_period,
            max_deals=self.config.max_deals_per_publish,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self._publisher.run)
            await nursery.start(self._follow_head)
            for record in self.deals():
                if record.state in _DRIVEN:
                    self._start_send.send_nowait(record.key)
            nursery.start_soon(self._drivers, nursery)
            self._ready.set()
            _log.info("provider started", miner=str(self.miner), deals=len(self.deals()))
            task_status.started()

    async def announce(self, peer_id: bytes, multiaddrs: tuple[bytes, ...]) -> list[CID]:
        """Put this node's peer ID and addresses in the miner's info on chain where they differ (what
        `lotus-miner actor set-peer-id` and `set-addrs` do), so that clients can find the provider;
        the messages sent (none when the chain already says so)."""
        head = self.node.chain.head()
        info = await self._call(self.node.state.miner_info, self.miner, head)
        sent: list[CID] = []
        changes: list[tuple[int, object]] = []
        if info.peer_id != peer_id:
            changes.append((MinerMethod.ChangePeerID, ChangePeerIDParams(peer_id)))
        if tuple(info.multiaddrs) != tuple(multiaddrs):
            changes.append((MinerMethod.ChangeMultiaddrs, ChangeMultiaddrsParams(tuple(multiaddrs))))
        for method, params in changes:
            message = message_to_push(self.miner, info.worker, method=method, params=params)
            signed: SignedMessage = await self._call(self.node.pusher.push_message, message, None)
            sent.append(signed.cid())
        if sent:
            _log.info("provider announced", miner=str(self.miner), messages=[str(c) for c in sent])
        return sent

    async def wait_ready(self) -> None:
        await self._ready.wait()

    @property
    def info(self) -> _Miner:
        if self._info is None:
            raise ProviderError("the storage provider is not running")
        return self._info

    async def _move(
        self, record: ProviderDealRecord, state: StorageDealStatus, message: str = "", **changes: Any
    ) -> ProviderDealRecord:
        moved = await self._store_move(record, state, message, **changes)
        log = _log.warning if state == S.StorageDealError else _log.info
        log("deal state", deal=str(record.uuid), state=state.name, message=message, deal_id=moved.deal_id)
        return moved

    async def wait_for(self, deal: uuid.UUID, *states: StorageDealStatus) -> ProviderDealRecord:
        """Wait until the deal is in one of the states (or a terminal one); its record."""
        return await self._wait_for(deal.bytes, states)

    # == proposals =======================================================================================

    async def propose(self, params: DealParams, peer: str) -> DealResponse:
        """Check a proposal; accept it (recorded, then driven) or say why not (nothing kept)."""
        await self._ready.wait()
        deal = params.uuid
        existing = self.store.get(params.deal_uuid)
        signed_cid = signed_proposal_cid(params.client_deal_proposal)
        if existing is not None:
            # The client asking again (it restarted before it read our answer): the same answer.
            if existing.signed_proposal_cid == signed_cid:
                return DealResponse(True)
            return DealResponse(False, f"deal UUID {deal} is already used by another deal")
        if any(r.signed_proposal_cid == signed_cid and r.state != S.StorageDealError for r in self.deals()):
            return DealResponse(False, "a deal with the same signed proposal is already in progress")
        head = self.node.chain.head()
        try:
            facts = await self._call(self._facts, params, head)
        except (StateQueryError, ActorNotFound) as exc:
            _log.warning("proposal check failed", deal=str(deal), error=str(exc))
            return DealResponse(False, f"server error: reading the chain: {exc}")
        signed_ask = await self._call(self.asks.get, self.miner)
        reason = check_proposal(
            params,
            miner=self.miner,
            ask=signed_ask.ask if signed_ask is not None else None,
            facts=facts,
            terms=self.config.terms,
        )
        proposal = params.client_deal_proposal.proposal
        if reason is not None:
            _log.info(
                "proposal rejected", deal=str(deal), peer=peer, client=str(proposal.client), reason=reason
            )
            return DealResponse(False, reason)
        record = carried(  # the deal's params as the client sent them
            ProviderDealRecord,
            params,
            state=S.StorageDealProposalAccepted,
            signed_proposal_cid=signed_cid,
            client_peer=peer,
            created=now_ms(),
        )
        await self._call(self.store.add, record, head.height, "proposal accepted")
        _log.info(
            "proposal accepted",
            deal=str(deal),
            peer=peer,
            client=str(proposal.client),
            piece=str(proposal.piece_cid),
            size=proposal.piece_size,
            start=proposal.start_epoch,
            end=proposal.end_epoch,
            offline=params.is_offline,
        )
        self._start_send.send_nowait(params.deal_uuid)
        self._changes.fire()
        return DealResponse(True)

    def _facts(self, params: DealParams, head: TipSet) -> ChainFacts:
        proposal = params.client_deal_proposal.proposal
        try:
            client_key: Address | None = self.node.state.account_key(proposal.client, head)
        except (ActorNotFound, StateQueryError):
            client_key = None
        committed = sum(
            r.client_deal_proposal.proposal.provider_collateral
            for r in self.deals()
            if r.state in _COUNTING_ON_FUNDS
        )
        return ChainFacts(
            epoch=head.height,
            policy=self.node.policy,
            sector_size=self.info.sector_size,
            client_key=client_key,
            client_available=available_escrow(self.node, proposal.client, head),
            collateral=collateral_bounds(self.node, proposal.piece_size, head),
            provider_available=available_escrow(self.node, self.miner, head) - committed,
        )

    # == offline data ====================================================================================

    async def import_data(self, deal: uuid.UUID, car: Path) -> ProviderDealRecord:
        """The data of an offline deal (Boost's BoostOfflineDealWithData): the CAR is copied into the
        staging area and checked like a transferred one; ProviderError if the deal waits for no data."""
        record = self.store.get(deal.bytes)
        if record is None:
            raise ProviderError(f"no deal {deal}")
        if not record.is_offline:
            raise ProviderError(
                f"deal {deal} is not an offline deal: its data comes by {record.transfer.type}"
            )
        if record.state != S.StorageDealWaitingForData:
            raise ProviderError(f"deal {deal} is {record.state.name}, not waiting for data")
        source = Path(car)
        if not source.is_file():
            raise ProviderError(f"{source} is not a file")
        dest = self._car_path(record)
        partial = dest.with_name(dest.name + ".partial")
        await self._call(_copy_file, source, partial)
        partial.replace(dest)
        record = await self._move(
            record, S.StorageDealVerifyData, f"data imported from {source}", car_path=str(dest)
        )
        self._imported.setdefault(deal.bytes, trio.Event()).set()
        return record

    # == driving a deal ==================================================================================

    def _car_path(self, record: ProviderDealRecord) -> Path:
        return self.staging / f"{record.uuid}.car"

    async def _drive(self, key: bytes) -> None:
        while True:
            record = self.store.get(key)
            if record is None or record.state not in _DRIVEN:
                return
            try:
                await self._step(record)
            except DealFailed as exc:
                await self._fail(key, str(exc))
            except Exception as exc:  # a bug or the machine failing: the deal says so, the node goes on
                _log.exception("deal step crashed", deal=str(record.uuid), state=record.state.name)
                await self._fail(key, f"internal error in {record.state.name}: {type(exc).__name__}: {exc}")

    async def _fail(self, key: bytes, reason: str) -> None:
        record = self.store.get(key)
        if record is None or record.state in TERMINAL:
            return
        await self._move(record, S.StorageDealError, reason)
        await self._call(self._discard_data, record)

    async def _step(self, record: ProviderDealRecord) -> None:
        state = record.state
        if state == S.StorageDealProposalAccepted:
            if record.is_offline:
                await self._move(record, S.StorageDealWaitingForData, "waiting for the data to be imported")
            else:
                await self._move(record, S.StorageDealTransferring, "pulling the data from the client")
        elif state == S.StorageDealTransferring:
            await self._transfer(record)
        elif state == S.StorageDealWaitingForData:
            event = self._imported.setdefault(record.key, trio.Event())
            await event.wait()
        elif state == S.StorageDealVerifyData:
            await self._verify(record)
        elif state in (S.StorageDealReserveProviderFunds, S.StorageDealProviderFunding):
            await self._funds(record)
        elif state == S.StorageDealPublish:
            await self._publish(record)
        elif state == S.StorageDealPublishing:
            await self._published(record)

    async def _transfer(self, record: ProviderDealRecord) -> None:
        try:
            request = HttpRequest.from_bytes(record.transfer.params)
        except DecodeError as exc:
            raise DealFailed(f"bad transfer parameters: {exc}") from None
        dest = self._car_path(record)
        size = record.transfer.size

        def progress(received: int) -> None:
            self._received[record.key] = received

        try:
            await download(request, size, dest, options=self.config.download, progress=progress)
        except TransferFailed as exc:
            raise DealFailed(f"data transfer failed: {exc}") from None
        await self._move(
            record,
            S.StorageDealVerifyData,
            f"received {size} bytes",
            car_path=str(dest),
            bytes_received=size,
        )

    async def _verify(self, record: ProviderDealRecord) -> None:
        proposal = record.client_deal_proposal.proposal
        car = Path(record.car_path)

        def add() -> None:
            try:
                stored = self.pieces.add_car(car, piece_cid=proposal.piece_cid)
            except PieceMismatch as exc:
                raise DealFailed(f"piece CID mismatch after transfer: {exc}") from None
            except PieceStoreError as exc:
                raise DealFailed(f"the deal's data is not usable: {exc}") from None
            if stored.padded_size != proposal.piece_size:
                self.pieces.remove(stored.piece_cid)
                raise DealFailed(
                    f"the data makes a piece of {stored.padded_size} bytes, "
                    f"the proposal says {proposal.piece_size}"
                )

        await self._call(add)
        await self._move(record, S.StorageDealReserveProviderFunds, f"piece {proposal.piece_cid} verified")

    async def _funds(self, record: ProviderDealRecord) -> None:
        async with self._funds_lock:
            record = self.store.get(record.key) or record
            if record.state == S.StorageDealProviderFunding and record.funds_cid is not None:
                await self._wait_landed(record.funds_cid, "the provider's AddBalance")
                await self._move(record, S.StorageDealPublish, "collateral added to the provider's escrow")
                return
            head = self.node.chain.head()
            available = await self._call(available_escrow, self.node, self.miner, head)
            others = sum(
                r.client_deal_proposal.proposal.provider_collateral
                for r in self.deals()
                if r.key != record.key
                and (
                    r.state == S.StorageDealPublish
                    or (r.state == S.StorageDealPublishing and r.deal_id is None)
                )
            )
            needed = record.client_deal_proposal.proposal.provider_collateral
            shortfall = needed + others - available
            if shortfall <= 0:
                await self._move(record, S.StorageDealPublish, "provider escrow covers the collateral")
                return
            if not self.config.terms.add_collateral:
                raise DealFailed(
                    f"the provider's escrow has {available} available, "
                    f"the deal needs {needed} more collateral"
                )
            message = message_to_push(
                builtin.STORAGE_MARKET_ACTOR_ADDR,
                self.info.worker,
                value=shortfall,
                method=MarketMethod.AddBalance,
                params=self.miner,
            )
            try:
                signed: SignedMessage = await self._call(self.node.pusher.push_message, message, None)
            except (MpoolError, WalletError) as exc:
                raise DealFailed(f"adding collateral to the provider's escrow failed: {exc}") from None
            record = await self._move(
                record,
                S.StorageDealProviderFunding,
                f"adding {shortfall} to the provider's escrow",
                funds_cid=signed.cid(),
            )
            await self._wait_landed(signed.cid(), "the provider's AddBalance")
            await self._move(record, S.StorageDealPublish, "collateral added to the provider's escrow")

    async def _wait_landed(self, cid: CID, what: str) -> None:
        lookup = await self.node.wait_msg(cid, self.config.message_confidence)
        if lookup.receipt.exit_code != ExitCode.Ok:
            raise DealFailed(f"{what} ({lookup.message}) failed with exit code {lookup.receipt.exit_code}")

    async def _publish(self, record: ProviderDealRecord) -> None:
        found = await self._call(self._find_publication, record)
        if found is not None:
            message, changes = found
            await self._move(record, S.StorageDealPublishing, message, **changes)
            return
        if record.client_deal_proposal.proposal.start_epoch <= self._epoch():
            raise DealFailed("the deal's start epoch passed before it could be published")
        assert self._publisher is not None
        try:
            cid = await self._publisher.publish(record.client_deal_proposal)
        except PublishFailed as exc:
            raise DealFailed(str(exc)) from None
        await self._move(record, S.StorageDealPublishing, f"publish message {cid} sent", publish_cid=cid)

    def _find_publication(self, record: ProviderDealRecord) -> tuple[str, dict[str, Any]] | None:
        """After a restart in Publish: the deal's publish message still in the pool, or in a tipset since
        the deal was accepted (it went out but its CID was not recorded); what to record, or None to
        publish."""
        deal = record.client_deal_proposal
        for pending in self.node.mpool.pending_for(self.info.worker):
            if _publishes(pending, deal):
                return f"publish message {pending.cid()} found in the pool", {"publish_cid": pending.cid()}
        since = record.events[0].epoch if record.events else 0
        ts = self.node.chain.head()
        while ts.height > since:
            for message in self.node.chain.messages_for_tipset(ts):
                if _publishes(message, deal):
                    return f"publish message {message.cid()} found on chain", {"publish_cid": message.cid()}
            ts = self.node.chain.load_tipset(ts.parents)
        return None

    async def _published(self, record: ProviderDealRecord) -> None:
        if record.deal_id is None:
            record = await self._deal_id(record)
        assert record.deal_id is not None
        proposal = record.client_deal_proposal.proposal
        placement = await self.sealer.placement(record.deal_id)
        if placement is None:
            try:
                placement = await self.sealer.add_deal(
                    PublishedDeal(record.deal_id, proposal, record.publish_cid), Path(record.car_path)
                )
            except SealingRefused as exc:
                raise DealFailed(f"the sealing pipeline refused the piece: {exc}") from None
        await self._move(
            record,
            S.StorageDealStaged,
            f"in sector {placement.sector} at offset {placement.offset}",
            **_placement_fields(placement),
        )

    async def _deal_id(self, record: ProviderDealRecord) -> ProviderDealRecord:
        cid = record.publish_cid
        assert cid is not None
        lookup = await self.node.wait_msg(cid, self.config.message_confidence)
        receipt = lookup.receipt
        if receipt.exit_code != ExitCode.Ok:
            raise DealFailed(
                f"PublishStorageDeals {lookup.message} failed with exit code {receipt.exit_code}"
            )
        signed = await self._call(self.node.chain.get_message, lookup.message)
        msg = signed.message if isinstance(signed, SignedMessage) else signed
        try:
            params = PublishStorageDealsParams.from_bytes(msg.params)
            ids = published_ids(params, PublishStorageDealsReturn.from_bytes(receipt.return_data))
        except (DecodeError, ValueError) as exc:
            raise DealFailed(f"cannot read the publish message's answer: {exc}") from None
        try:
            index = params.deals.index(record.client_deal_proposal)
        except ValueError:
            raise DealFailed(f"the publish message {lookup.message} does not carry this deal") from None
        deal_id = ids[index]
        if deal_id is None:
            raise DealFailed(
                "the market refused the deal when it was published (it is not among the valid deals)"
            )
        return await self._call(
            partial(self.store.update, record, deal_id=deal_id, publish_cid=lookup.message)
        )

    # == following deals on chain ========================================================================

    async def _follow_head(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        changes = self.node.chain.subscribe()
        task_status.started()
        while True:
            try:
                batch: list[HeadChange] = await changes.receive()
            except trio.EndOfChannel:
                changes = self.node.chain.subscribe()
                continue
            if not batch:
                continue
            head = self.node.chain.head()
            for record in self.deals():
                try:
                    await self._track(record, head)
                except Exception:
                    _log.exception("deal tracking failed", deal=str(record.uuid))

    async def _track(self, record: ProviderDealRecord, head: TipSet) -> None:
        proposal = record.client_deal_proposal.proposal
        if record.state == S.StorageDealWaitingForData and proposal.start_epoch <= head.height:
            await self._fail(
                record.key, f"the deal's start epoch {proposal.start_epoch} passed before its data arrived"
            )
            self._imported.setdefault(record.key, trio.Event()).set()
            return
        if record.state not in _FOLLOWED or record.deal_id is None:
            return
        placement = await self.sealer.placement(record.deal_id)
        if placement is not None and placement.failed and record.state != S.StorageDealActive:
            await self._fail(record.key, f"sector {placement.sector} failed sealing: {placement.failed}")
            return
        if placement is not None:
            changes = _placement_fields(placement)
            if any(getattr(record, k) != v for k, v in changes.items()):
                record = await self._call(partial(self.store.update, record, **changes))
            if record.state == S.StorageDealStaged and placement.state not in _PACKING_STATES:
                record = await self._move(
                    record, S.StorageDealSealing, f"sector {placement.sector} is {placement.state}"
                )
        on_chain = await self._call(self.node.state.storage_deal, record.deal_id, head)
        if on_chain is None:
            if record.state == S.StorageDealActive and head.height >= proposal.end_epoch:
                await self._end(record, S.StorageDealExpired, f"the deal ended at epoch {proposal.end_epoch}")
            elif record.state == S.StorageDealActive:
                await self._end(
                    record, S.StorageDealSlashed, "the deal is gone from the market before its end"
                )
            elif head.height >= proposal.start_epoch:
                await self._end(
                    record,
                    S.StorageDealSlashed,
                    f"the deal was not activated by its start epoch {proposal.start_epoch}: "
                    "the market removed it",
                )
            return
        state = on_chain.state
        if state.slash_epoch != -1:
            await self._end(
                record,
                S.StorageDealSlashed,
                f"slashed at epoch {state.slash_epoch}: its sector was terminated",
            )
        elif state.sector_start_epoch != -1 and record.state != S.StorageDealActive:
            await self._move(
                record,
                S.StorageDealActive,
                f"active since epoch {state.sector_start_epoch} in sector {record.sector_number}",
            )
        elif record.state == S.StorageDealActive and head.height >= proposal.end_epoch:
            await self._end(record, S.StorageDealExpired, f"the deal ended at epoch {proposal.end_epoch}")

    async def _end(self, record: ProviderDealRecord, state: StorageDealStatus, message: str) -> None:
        await self._move(record, state, message)
        await self._call(self._discard_data, record)

    def _discard_data(self, record: ProviderDealRecord) -> None:
        """Stop serving a deal's piece (unless another live deal has the same piece: the piece store then
        reads that deal's CAR) and remove the deal's CAR."""
        piece = record.client_deal_proposal.proposal.piece_cid
        stored = self.pieces.get(piece)
        car = Path(record.car_path).absolute() if record.car_path else None
        if car is not None and stored is not None and Path(stored.car_path) == car:
            other = next(
                (
                    r
                    for r in self.deals()
                    if r.key != record.key
                    and r.state not in TERMINAL
                    and r.client_deal_proposal.proposal.piece_cid == piece
                    and r.car_path
                    and Path(r.car_path).is_file()
                ),
                None,
            )
            if other is not None:
                self.pieces.add_car(Path(other.car_path), piece_cid=piece)
            else:
                self.pieces.remove(piece)
        if car is not None:
            car.unlink(missing_ok=True)
        dest = self._car_path(record)
        dest.with_name(dest.name + ".partial").unlink(missing_ok=True)

    # == status ==========================================================================================

    async def status(self, request: DealStatusRequest) -> DealStatusResponse:
        """The deal's status for its client (the request signed by the client's key), as Boost answers."""
        record = self.store.get(request.deal_uuid)
        deal = uuid.UUID(bytes=request.deal_uuid)
        if record is None:
            return DealStatusResponse(
                deal_uuid=request.deal_uuid, error=f"no storage deal found with deal UUID {deal}"
            )
        client = record.client_deal_proposal.proposal.client
        try:
            key = await self._call(self.node.state.account_key, client, self.node.chain.head())
        except (ActorNotFound, StateQueryError):
            return DealStatusResponse(
                deal_uuid=request.deal_uuid, error=f"failed to get account key for client addr {client}"
            )
        if not is_valid(request.signature, key, request.deal_uuid):
            return DealStatusResponse(deal_uuid=request.deal_uuid, error="signature verification failed")
        return self.status_of(record)

    def status_of(self, record: ProviderDealRecord) -> DealStatusResponse:
        received = max(record.bytes_received, self._received.get(record.key, 0))
        return DealStatusResponse(
            deal_uuid=record.deal_uuid,
            deal_status=DealStatus(
                error=record.message if record.state == S.StorageDealError else "",
                status=boost_checkpoint(record.state),
                sealing_status=record.sealing_state,
                proposal=record.client_deal_proposal.proposal,
                signed_proposal_cid=record.signed_proposal_cid,
                publish_cid=record.publish_cid,
                chain_deal_id=record.deal_id or 0,
                state=int(record.state),
                sector_number=record.sector_number,
                piece_offset=record.piece_offset,
                inclusion_proof=record.inclusion_proof,
            ),
            is_offline=record.is_offline,
            transfer_size=record.transfer.size,
            n_bytes_received=received,
        )

    # == views ===========================================================================================

    def deals(self) -> list[ProviderDealRecord]:
        """This miner's deals: a node's deal store keeps those of every miner it was the provider of
        (it serves one at a time, node/markets/node_service.py)."""
        return [r for r in self.store.all() if r.client_deal_proposal.proposal.provider == self.miner]

    def deal(self, deal: uuid.UUID) -> ProviderDealRecord:
        record = self.store.get(deal.bytes)
        if record is None or record.client_deal_proposal.proposal.provider != self.miner:
            raise ProviderError(f"no deal {deal}")
        return record

    def bytes_received(self, record: ProviderDealRecord) -> int:
        return max(record.bytes_received, self._received.get(record.key, 0))


def _publishes(message: Message | SignedMessage, deal: ClientDealProposal) -> bool:
    """Whether message is a PublishStorageDeals carrying deal."""
    msg = message.message if isinstance(message, SignedMessage) else message
    if msg.to != builtin.STORAGE_MARKET_ACTOR_ADDR or msg.method != MarketMethod.PublishStorageDeals:
        return False
    try:
        return deal in PublishStorageDealsParams.from_bytes(msg.params).deals
    except DecodeError:
        return False


def _placement_fields(placement: SectorPlacement) -> dict[str, Any]:
    return {
        "sector_number": placement.sector,
        "piece_offset": placement.offset,
        "sealing_state": placement.state,
        "inclusion_proof": placement.inclusion_proof,
    }


def _copy_file(source: Path, dest: Path) -> None:
    with source.open("rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
