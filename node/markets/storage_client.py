"""The storage client: proposes deals to providers and follows them until the data is proven stored.

`start_deal(DealRequest)` is ClientStartDeal. Everything that can be checked before anything is spent is
checked there, and a request that fails a check is refused with the reason (nothing recorded): the
wallet holds the key, the miner exists and has a peer ID, the data is imported (its CAR, root, piece CID
and size), the piece fits the miner's sectors, the miner's signed ask (checked against its worker key)
takes the price and the piece size, the escrow covers the deal (or, with `add_funds`, an AddBalance is
sent for what is missing). Then the proposal is built (start epoch far enough ahead, end aligned on the
miner's proving period as Lotus does, collateral from the market's bounds, label = the root CID),
signed by the wallet, recorded, and the deal is driven in the background:

    [ClientFunding ->] FundsReserved -> ProposalAccepted | ProposalRejected
      -> Transferring (the provider pulls the CAR from /deal-data/<uuid>) | WaitingForData (offline)
      -> VerifyData -> Publishing -> AwaitingPreCommit (published: the deal on chain is ours)
      -> Staged (sector and inclusion proof known) -> Sealing -> Active -> Expired | Slashed

The provider's progress comes from `/fil/storage/status/1.2.0` (polled every `poll_interval`); what the
chain can confirm the client checks itself. "Active" is never taken from the provider: the client reads
the miner's sector on chain (it must exist and hold the deal), checks the provider's piece inclusion
proof against that sector's CommD, and reads the market's deal state (activated). After that it follows
the chain alone for the deal's end.

Records are durable (node/markets/deal_store.py); `run` resumes every deal in flight after a restart and
offers its data again.
"""

import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import structlog
import trio
from multiaddr import Multiaddr

from actors import builtin
from actors.market.types import ClientDealProposal, DealProposal, MarketMethod
from chain.encoding.cid import CID
from chain.encoding.commcid import commitment_of_v1
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.mpool.push import message_to_push
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.types.address import Address
from chain.types.tipset import TipSet
from chain.vm.exitcode import ExitCode
from node.daemon import TaskStatus
from node.fullnode import FullNode
from node.markets.chain_view import as_stored, available_escrow, collateral_bounds, sector_with_deal
from node.markets.deal_driver import DealDriver
from node.markets.deal_states import (
    CLIENT_TRANSITIONS,
    PROVIDER_TRANSITIONS,
    TERMINAL,
    StorageDealStatus,
    reachable,
)
from node.markets.deal_store import CLIENT_PREFIX, ClientDealRecord, DealStore, now_ms
from node.markets.deal_transfer import PREFIX as DATA_PREFIX
from node.markets.deal_transfer import DealDataApp, new_token
from node.markets.deals_config import ClientConfig
from node.markets.imports import Import, ImportStore
from node.markets.storage_ask import AskError, query_ask, verify_ask
from node.markets.storage_types import (
    DEAL,
    STATUS,
    TRANSFER_HTTP,
    TRANSFER_MANUAL,
    DealParams,
    DealResponse,
    DealStatusRequest,
    DealStatusResponse,
    HttpRequest,
    StorageAsk,
    Transfer,
    signed_proposal_cid,
)
from node.p2p.host import AddrInfo, Libp2pHost
from node.p2p.protocols import PeerID
from node.p2p.streamio import StreamFailure
from node.wallet import WalletError
from proofs.commp import PieceError, check_piece_size
from proofs.fr32 import padded_size as fr32_padded
from proofs.pip import MalformedProof, PieceInclusionProof, verify_piece_inclusion

S = StorageDealStatus
_log = structlog.get_logger("deals.client")

STREAM_TIMEOUT: Final = 30.0
PROPOSE_ATTEMPTS: Final = 3
# Lotus's client proposes 120% of StateDealProviderCollateralBounds' minimum (clientOverestimation), so
# the proposal still clears the provider's check when the supply has grown by the time it is made.
COLLATERAL_OVERESTIMATION: Final = (12, 10)
# The client's states in the order a deal goes through them: a report never moves a deal back.
_ORDER: Final = (
    S.StorageDealClientFunding,
    S.StorageDealFundsReserved,
    S.StorageDealProposalAccepted,
    S.StorageDealTransferring,
    S.StorageDealWaitingForData,
    S.StorageDealVerifyData,
    S.StorageDealPublishing,
    S.StorageDealAwaitingPreCommit,
    S.StorageDealStaged,
    S.StorageDealSealing,
    S.StorageDealActive,
)
_RANK: Final = {state: i for i, state in enumerate(_ORDER)}
_IN_FLIGHT: Final = frozenset(_ORDER[:-1])
# Provider states that say the deal's data has arrived (the transfer token is no longer needed).
_PAST_TRANSFER: Final = reachable(PROVIDER_TRANSITIONS, S.StorageDealVerifyData)
# Provider states in which its record has the chain deal ID.
_HAS_DEAL_ID: Final = frozenset(
    {
        S.StorageDealStaged,
        S.StorageDealSealing,
        S.StorageDealActive,
        S.StorageDealExpired,
        S.StorageDealSlashed,
    }
)


class ClientError(Exception):
    """A deal the client will not make, or a request about deals it cannot answer; says why."""


@dataclass(frozen=True, slots=True)
class DealRequest:
    """ClientStartDeal's parameters (Lotus StartDealParams, with DataRef's fields inline)."""

    root: CID
    wallet: Address
    miner: Address
    epoch_price: int  # attoFIL per epoch for the whole piece
    min_blocks_duration: int
    transfer_type: str = TRANSFER_HTTP  # "http" (graphsync is accepted as a synonym) or "manual"
    piece_cid: CID | None = None  # from the import when not given
    piece_size: int = 0  # unpadded (DataRef.PieceSize); from the import when 0
    provider_collateral: int = 0  # 0: the market's minimum, with Lotus's margins (x 1.1 x 1.2)
    start_epoch: int = -1  # <= 0: the head plus the configured start buffer
    fast_retrieval: bool = True
    verified: bool = False
    add_funds: bool = False  # add what the escrow lacks with MarketAddBalance (else refuse)


@dataclass(frozen=True, slots=True)
class InclusionCheck:
    """A deal's piece inclusion proof checked against its sector on chain."""

    sector_size: int  # of the deal's miner, as the chain says (what the proof is checked against)
    comm_d: CID | None  # the sector's unsealed CID on chain (None: the sector is not there with the deal)
    problem: str | None  # None: the proof shows the piece in that CommD; else why not (yet)


@dataclass(frozen=True, slots=True)
class ProviderContact:
    miner: Address
    peer: PeerID
    addrs: tuple[str, ...]
    worker: Address
    sector_size: int


def deal_end(start: int, min_duration: int, period: int, period_start: int) -> int:
    """Lotus calcDealExpiration: the first epoch at least min_duration after start that ends one of the
    miner's proving periods (so the deal ends where a sector's expiration can)."""
    minimum = start + min_duration
    end = minimum + period - (minimum % period) + (period_start % period) - 1
    while end < minimum:
        end += period
    return end


class StorageClient(DealDriver[ClientDealRecord]):
    """See the module's docstring."""

    name = "storage-client"

    def __init__(
        self,
        node: FullNode,
        *,
        host: Libp2pHost,
        store: DealStore[ClientDealRecord],
        imports: ImportStore,
        data: DealDataApp,
        config: ClientConfig | None = None,
    ) -> None:
        super().__init__(node, store)
        self.host = host
        self.imports = imports
        self.data = data
        self.config = config or ClientConfig.for_policy(node.policy)

    @classmethod
    def open_store(cls, meta: Any) -> DealStore[ClientDealRecord]:
        return DealStore(meta, ClientDealRecord, CLIENT_PREFIX, CLIENT_TRANSITIONS)

    # == the service =====================================================================================

    async def run(self, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for record in self.store.all():
                if record.state in TERMINAL:
                    continue
                self._offer(record)
                self._start_send.send_nowait(record.key)
            nursery.start_soon(self._drivers, nursery)
            self._ready.set()
            _log.info("client started", deals=len(self.store.all()))
            task_status.started()

    async def _move(
        self, record: ClientDealRecord, state: StorageDealStatus, message: str = "", **changes: Any
    ) -> ClientDealRecord:
        moved = await self._store_move(record, state, message, **changes)
        log = _log.warning if state in (S.StorageDealError, S.StorageDealProposalRejected) else _log.info
        log("deal state", deal=str(record.proposal_cid), state=state.name, message=message)
        if state in TERMINAL:
            self.data.revoke(record.uuid)
        return moved

    async def _update(self, record: ClientDealRecord, **changes: Any) -> ClientDealRecord:
        updated = await self._call(partial(self.store.update, record, **changes))
        self._changes.fire()
        return updated

    async def wait_for(self, proposal: CID, *states: StorageDealStatus) -> ClientDealRecord:
        """Wait until the deal is in one of the states (or a terminal one); its record."""
        return await self._wait_for(proposal.bytes, states)

    def deals(self) -> list[ClientDealRecord]:
        return self.store.all()

    def deal(self, proposal: CID) -> ClientDealRecord:
        record = self.store.get(proposal.bytes)
        if record is None:
            raise ClientError(f"no deal with proposal CID {proposal}")
        return record

    def _offer(self, record: ClientDealRecord) -> None:
        if (
            record.token
            and record.car_path
            and _RANK.get(record.state, 99) <= _RANK[S.StorageDealTransferring]
        ):
            self.data.offer(record.uuid, Path(record.car_path), record.car_size, record.token)

    # == the provider ====================================================================================

    def _contact(self, miner: Address, ts: TipSet) -> ProviderContact:
        info = self.node.state.miner_info(miner, ts)
        if not info.peer_id:
            raise ClientError(f"miner {miner} has no peer ID on chain: it cannot be reached for deals")
        try:
            peer = PeerID(info.peer_id)
            addrs = tuple(str(Multiaddr(raw)) for raw in info.multiaddrs)
        except Exception as exc:  # libp2p's parsers raise several kinds
            raise ClientError(
                f"miner {miner}'s peer ID or addresses on chain cannot be read: {exc}"
            ) from None
        return ProviderContact(miner, peer, addrs, info.worker, info.sector_size)

    async def _connect(self, peer: PeerID, addrs: tuple[str, ...]) -> None:
        if self.host.is_connected(peer):
            return
        if not addrs:
            raise ClientError(f"not connected to {peer} and its miner lists no addresses on chain")
        try:
            await self.host.connect(AddrInfo(peer.to_base58(), addrs))
        except StreamFailure as exc:
            raise ClientError(f"cannot connect to the provider {peer}: {exc}") from None

    async def query_ask(self, peer: PeerID | None, miner: Address) -> StorageAsk:
        """ClientQueryAsk: the miner's ask from peer (its on-chain peer when None), checked against the
        miner's worker key; ClientError when it cannot be had or trusted."""
        head = self.node.chain.head()
        contact = await self._call(self._contact, miner, head)
        if peer is None or peer == contact.peer:
            await self._connect(contact.peer, contact.addrs)
            peer = contact.peer
        try:
            signed = await query_ask(self.host, peer, miner)
            return await self._call(verify_ask, self.node, signed, miner, head)
        except AskError as exc:
            raise ClientError(str(exc)) from None

    # == starting a deal =================================================================================

    async def start_deal(self, request: DealRequest) -> CID:
        """ClientStartDeal (see the module's docstring): the proposal CID of the new deal."""
        head = self.node.chain.head()
        try:
            key = await self._call(self.node.state.account_key, request.wallet, head)
        except (ActorNotFound, StateQueryError) as exc:
            raise ClientError(f"failed resolving the wallet address {request.wallet}: {exc}") from None
        if not self.node.wallet.has(key):
            raise ClientError(f"provided address {request.wallet} doesn't exist in wallet")
        try:
            contact = await self._call(self._contact, request.miner, head)
        except (ActorNotFound, StateQueryError) as exc:
            raise ClientError(f"failed getting miner {request.miner}'s info: {exc}") from None
        transfer_type = request.transfer_type
        if transfer_type == "graphsync":
            transfer_type = TRANSFER_HTTP  # Lotus's default transfer type; filpy's providers pull over HTTP
        if transfer_type not in (TRANSFER_HTTP, TRANSFER_MANUAL):
            raise ClientError(f"transfer type {request.transfer_type!r} is not supported: use http or manual")
        imported, piece_cid, piece_size = self._data(request, transfer_type)
        if piece_size > contact.sector_size:
            raise ClientError(f"data doesn't fit in a sector: {piece_size} > {contact.sector_size}")
        if request.verified:
            raise ClientError("verified deals cannot be made: this network has no verified registry")
        await self._connect(contact.peer, contact.addrs)
        ask = await self.query_ask(contact.peer, request.miner)
        least = ask.min_price(piece_size, request.verified)
        if request.epoch_price < least:
            raise ClientError(
                f"price {request.epoch_price} per epoch is under the provider's ask: {least} for a "
                f"{piece_size}-byte piece ({ask.price} attoFIL per GiB per epoch)"
            )
        if not ask.min_piece_size <= piece_size <= ask.max_piece_size:
            raise ClientError(
                f"a {piece_size}-byte piece is outside the provider's sizes "
                f"[{ask.min_piece_size}, {ask.max_piece_size}]"
            )
        start = request.start_epoch if request.start_epoch > 0 else head.height + self.config.start_buffer
        if start <= head.height:
            raise ClientError(f"deal start epoch {start} has already passed (current epoch {head.height})")
        deadline = await self._call(self.node.state.proving_deadline, request.miner, head)
        end = deal_end(start, request.min_blocks_duration, deadline.proving_period, deadline.period_start)
        collateral = request.provider_collateral
        if collateral <= 0:
            bounds = await self._call(collateral_bounds, self.node, piece_size, head)
            num, den = COLLATERAL_OVERESTIMATION
            collateral = bounds.min * num // den
        proposal = DealProposal(
            piece_cid=piece_cid,
            piece_size=piece_size,
            verified_deal=request.verified,
            client=key,
            provider=request.miner,
            label=str(request.root),
            start_epoch=start,
            end_epoch=end,
            storage_price_per_epoch=request.epoch_price,
            provider_collateral=collateral,
            client_collateral=0,
        )
        needed = proposal.client_balance_requirement
        available = await self._call(self._available, key, head)
        funds_cid: CID | None = None
        if available < needed:
            if not request.add_funds:
                raise ClientError(
                    f"the market escrow of {key} has {available} attoFIL available, the deal needs {needed}: "
                    "add funds (MarketAddBalance) or let the deal add them"
                )
            funds_cid = await self._add_funds(key, needed - available)
        try:
            signature = self.node.wallet.sign(key, proposal.signing_bytes())
        except WalletError as exc:
            raise ClientError(f"failed to sign the proposal: {exc}") from None
        signed = ClientDealProposal(proposal, signature)
        proposal_cid = signed_proposal_cid(signed)
        if self.store.get(proposal_cid.bytes) is not None:
            raise ClientError(f"the same deal ({proposal_cid}) was proposed already")
        online = transfer_type == TRANSFER_HTTP
        record = ClientDealRecord(
            proposal_cid=proposal_cid,
            deal_uuid=uuid.uuid4().bytes,
            state=S.StorageDealClientFunding if funds_cid is not None else S.StorageDealFundsReserved,
            client_deal_proposal=signed,
            wallet=key,
            root=request.root,
            transfer_type=transfer_type,
            provider_peer=contact.peer.to_base58(),
            car_path=str(imported.car_path) if online and imported is not None else "",
            car_size=imported.car_size if online and imported is not None else 0,
            token=new_token() if online else "",
            fast_retrieval=request.fast_retrieval,
            funds_cid=funds_cid,
            reserved=needed,
            created=now_ms(),
        )
        message = (
            f"adding {needed - available} to the escrow"
            if funds_cid is not None
            else "escrow covers the deal"
        )
        record = await self._call(self.store.add, record, head.height, message)
        _log.info(
            "deal started",
            deal=str(proposal_cid),
            uuid=str(record.uuid),
            miner=str(request.miner),
            piece=str(piece_cid),
            size=piece_size,
            start=start,
            end=end,
            price=request.epoch_price,
        )
        self._offer(record)
        self._start_send.send_nowait(record.key)
        self._changes.fire()
        return proposal_cid

    def _data(self, request: DealRequest, transfer_type: str) -> tuple[Import | None, CID, int]:
        """The import behind the deal (None for an offline deal given its piece), its piece CID and padded
        size."""
        found = self.imports.by_root(request.root)
        imported = found[-1] if found else None
        if imported is None and (transfer_type == TRANSFER_HTTP or request.piece_cid is None):
            raise ClientError(f"no import has root {request.root}: import the data first (ClientImport)")
        piece_cid = request.piece_cid or (imported.piece_cid if imported is not None else None)
        assert piece_cid is not None
        if request.piece_size:
            try:
                piece_size = check_piece_size(fr32_padded(request.piece_size))
            except (PieceError, ValueError) as exc:
                raise ClientError(f"piece size {request.piece_size}: {exc}") from None
        elif imported is not None:
            piece_size = imported.piece_size
        else:
            raise ClientError("an offline deal without an import needs its piece size")
        mismatch = imported is not None and (piece_cid, piece_size) != (
            imported.piece_cid,
            imported.piece_size,
        )
        if mismatch and imported is not None and transfer_type == TRANSFER_HTTP:
            raise ClientError(
                f"the import of {request.root} is piece {imported.piece_cid} of {imported.piece_size} "
                f"bytes, not {piece_cid} of {piece_size}"
            )
        return imported, piece_cid, piece_size

    def _available(self, wallet: Address, ts: TipSet) -> int:
        """Escrow not locked and not counted on by this client's deals in flight."""
        reserved = sum(r.reserved for r in self.store.all() if r.state not in TERMINAL)
        return available_escrow(self.node, wallet, ts) - reserved

    async def _add_funds(self, wallet: Address, amount: int) -> CID:
        message = message_to_push(
            builtin.STORAGE_MARKET_ACTOR_ADDR,
            wallet,
            value=amount,
            method=MarketMethod.AddBalance,
            params=wallet,
        )
        try:
            signed = await self._call(self.node.pusher.push_message, message, None)
        except (MpoolError, WalletError) as exc:
            raise ClientError(f"adding {amount} to the market escrow failed: {exc}") from None
        return signed.cid()

    # == driving a deal ==================================================================================

    async def _drive(self, key: bytes) -> None:
        while True:
            record = self.store.get(key)
            if record is None or record.state in TERMINAL:
                return
            try:
                done = await self._step(record)
            except ClientError as exc:
                await self._fail(key, str(exc))
                return
            except Exception as exc:  # a bug or the machine failing: the deal says so, the node goes on
                _log.exception("deal step crashed", deal=str(record.proposal_cid), state=record.state.name)
                await self._fail(key, f"internal error in {record.state.name}: {type(exc).__name__}: {exc}")
                return
            if done:
                return

    async def _fail(self, key: bytes, reason: str) -> None:
        record = self.store.get(key)
        if record is not None and record.state not in TERMINAL:
            await self._move(record, S.StorageDealError, reason, reserved=0, token="")

    async def _step(self, record: ClientDealRecord) -> bool:
        """One step; True when the deal needs no more driving (terminal, or followed on chain)."""
        state = record.state
        if state == S.StorageDealClientFunding:
            assert record.funds_cid is not None
            lookup = await self.node.wait_msg(record.funds_cid, self.config.message_confidence)
            if lookup.receipt.exit_code != ExitCode.Ok:
                raise ClientError(
                    f"MarketAddBalance {lookup.message} failed: exit code {lookup.receipt.exit_code}"
                )
            await self._move(record, S.StorageDealFundsReserved, "funds added to the escrow")
        elif state == S.StorageDealFundsReserved:
            await self._propose(record)
        elif state == S.StorageDealActive:
            await self._follow_active(record)
            return True
        else:
            start = record.client_deal_proposal.proposal.start_epoch
            if record.deal_id is not None:
                await self._poll(record)
                await trio.sleep(self.config.poll_interval)
                return False
            if self._epoch() >= start:
                raise ClientError(f"the deal's start epoch {start} passed before the provider published it")
            # A provider that has gone silent can hold a status request for its whole timeout: the
            # start epoch passing ends the wait (the deal fails then, not a timeout later).
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_at_epoch, start, nursery.cancel_scope)
                await self._poll(record)
                await trio.sleep(self.config.poll_interval)
                nursery.cancel_scope.cancel()
        return False

    async def _cancel_at_epoch(self, epoch: int, scope: trio.CancelScope) -> None:
        """Cancel scope once the head reaches epoch."""
        changes = self.node.chain.subscribe()
        async with changes:
            while self._epoch() < epoch:
                try:
                    await changes.receive()
                except trio.EndOfChannel:  # the store dropped a slow subscriber: subscribe again
                    changes = self.node.chain.subscribe()
        scope.cancel()

    def _params(self, record: ClientDealRecord) -> DealParams:
        if record.transfer_type == TRANSFER_MANUAL:
            transfer = Transfer()
        else:
            url = f"{self.config.transfer_url.rstrip('/')}{DATA_PREFIX}{record.uuid}"
            request = HttpRequest(url, {"Authorization": f"Bearer {record.token}"})
            transfer = Transfer(type=TRANSFER_HTTP, params=request.to_bytes(), size=record.car_size)
        return DealParams(
            deal_uuid=record.deal_uuid,
            is_offline=record.transfer_type == TRANSFER_MANUAL,
            client_deal_proposal=record.client_deal_proposal,
            deal_data_root=record.root,
            transfer=transfer,
        )

    async def _propose(self, record: ClientDealRecord) -> None:
        params = self._params(record)
        peer = PeerID.from_base58(record.provider_peer)
        miner = record.client_deal_proposal.proposal.provider
        last = ""
        for attempt in range(PROPOSE_ATTEMPTS):
            try:
                contact = await self._call(self._contact, miner, self.node.chain.head())
                await self._connect(peer, contact.addrs)
                response = await send_proposal(self.host, peer, params)
                break
            except ClientError as exc:
                last = str(exc)
                _log.info(
                    "proposal not delivered", deal=str(record.proposal_cid), attempt=attempt + 1, error=last
                )
                await trio.sleep(1.0 * 2**attempt)
        else:
            raise ClientError(f"the proposal could not be delivered to {peer}: {last}")
        if not response.accepted:
            await self._move(record, S.StorageDealProposalRejected, response.message, reserved=0, token="")
            return
        state_next = S.StorageDealProposalAccepted
        await self._move(record, state_next, "the provider accepted the proposal")

    async def _poll(self, record: ClientDealRecord) -> None:
        peer = PeerID.from_base58(record.provider_peer)
        try:
            if not self.host.is_connected(peer):
                # after a restart of either side the connection is gone: dial the provider again at the
                # addresses its miner lists on chain, as the proposal did
                miner = record.client_deal_proposal.proposal.provider
                contact = await self._call(self._contact, miner, self.node.chain.head())
                await self._connect(peer, contact.addrs)
            response = await request_status(self.host, peer, record, self.node)
        except (ClientError, WalletError) as exc:
            failures = record.status_failures + 1
            note = (
                {"message": f"the provider has not answered {failures} status requests: {exc}"}
                if failures >= self.config.status_failures_noted
                else {}
            )
            await self._update(record, status_failures=failures, **note)
            return
        if record.status_failures:
            record = await self._update(record, status_failures=0)
        await self._apply(record, response)

    async def _apply(self, record: ClientDealRecord, response: DealStatusResponse) -> None:
        """Take in what the provider reports, checking on chain what the chain can confirm."""
        status = response.deal_status
        if response.error or status is None:
            await self._update(record, message=f"the provider says: {response.error or 'no status'}")
            return
        try:
            reported = StorageDealStatus(status.state)
        except ValueError:
            await self._update(record, message=f"the provider reports an unknown state {status.state}")
            return
        if reported == S.StorageDealError:
            await self._fail(record.key, f"the provider failed the deal: {status.error}")
            return
        if reported in _PAST_TRANSFER and record.token:
            self.data.revoke(record.uuid)
            record = await self._update(record, token="")
        changes: dict[str, Any] = {"bytes_sent": response.n_bytes_received}
        if status.publish_cid is not None:
            changes["publish_cid"] = status.publish_cid
        if status.sector_number is not None:
            changes.update(
                sector_number=status.sector_number,
                piece_offset=status.piece_offset,
                inclusion_proof=status.inclusion_proof,
            )
        if reported in _HAS_DEAL_ID:
            changes["deal_id"] = status.chain_deal_id
        record = await self._update(record, **changes)
        target = {
            S.StorageDealTransferring: S.StorageDealTransferring,
            S.StorageDealWaitingForData: S.StorageDealWaitingForData,
            S.StorageDealVerifyData: S.StorageDealVerifyData,
            S.StorageDealReserveProviderFunds: S.StorageDealVerifyData,
            S.StorageDealProviderFunding: S.StorageDealVerifyData,
            S.StorageDealPublish: S.StorageDealVerifyData,
            S.StorageDealPublishing: S.StorageDealPublishing,
        }.get(reported)
        if target is not None:
            await self._advance(record, target, f"the provider reports {reported.name}")
            return
        if record.deal_id is None:
            return
        await self._check_chain(record, reported, status.sealing_status)

    async def _advance(
        self, record: ClientDealRecord, state: StorageDealStatus, message: str, **changes: Any
    ) -> ClientDealRecord:
        """Move forward to state; a report of a state the deal is past changes nothing."""
        if _RANK.get(state, -1) > _RANK.get(record.state, -1):
            return await self._move(record, state, message, **changes)
        return record

    async def _check_chain(self, record: ClientDealRecord, reported: StorageDealStatus, sealing: str) -> None:
        head = self.node.chain.head()
        assert record.deal_id is not None
        ours = record.client_deal_proposal.proposal
        on_chain = await self._call(self.node.state.storage_deal, record.deal_id, head)
        if on_chain is None:
            if head.height >= ours.start_epoch:
                await self._fail(
                    record.key,
                    f"deal {record.deal_id} is not on chain after its start epoch {ours.start_epoch}: it was "
                    "not activated in time (the provider's collateral was slashed)",
                )
            return  # the publish message may not have executed in our view yet
        stored = await self._call(as_stored, self.node, ours, head)
        if on_chain.proposal != stored:
            await self._fail(
                record.key, f"the provider reported deal {record.deal_id}, which is not this proposal"
            )
            return
        record = await self._advance(
            record, S.StorageDealAwaitingPreCommit, f"published as deal {record.deal_id}"
        )
        record = await self._update(record, reserved=0)
        if record.sector_number is not None:
            record = await self._advance(
                record,
                S.StorageDealStaged,
                f"in sector {record.sector_number} at offset {record.piece_offset}",
            )
        sealing_now = reported in (S.StorageDealSealing, S.StorageDealActive)
        if sealing_now and record.sector_number is not None:
            record = await self._advance(
                record, S.StorageDealSealing, f"sector {record.sector_number}: {sealing}"
            )
        if on_chain.state.slash_epoch != -1:
            await self._move(record, S.StorageDealSlashed, f"slashed at epoch {on_chain.state.slash_epoch}")
            return
        if on_chain.state.sector_start_epoch == -1:
            return
        verdict = await self._call(self._verify_stored, record, head)
        if verdict is None:
            await self._advance(
                record,
                S.StorageDealActive,
                f"active since epoch {on_chain.state.sector_start_epoch} in sector {record.sector_number}: "
                "the sector is on chain and the piece inclusion proof verifies against its CommD",
                proof_verified=True,
            )
        elif verdict.startswith("bad:"):
            await self._fail(record.key, verdict[4:].strip())
        else:
            await self._update(record, message=verdict)

    def _verify_stored(self, record: ClientDealRecord, ts: TipSet) -> str | None:
        """None when the deal's sector is on chain with the deal and the provider's inclusion proof shows
        the piece in its CommD (VerifySectorExists, VerifyPIP); else why not yet, or "bad: ..." when the
        proof is wrong."""
        return self.check_inclusion(record, ts).problem

    def check_inclusion(self, record: ClientDealRecord, ts: TipSet) -> InclusionCheck:
        """The provider's inclusion proof of the deal checked against its sector's CommD as the chain at
        ts has it (see `_verify_stored`); the miner's sector size and the CommD found, if any."""
        proposal = record.client_deal_proposal.proposal
        sector_size = self.node.state.miner_info(proposal.provider, ts).sector_size
        if record.sector_number is None or not record.inclusion_proof or record.deal_id is None:
            return InclusionCheck(
                sector_size,
                None,
                "waiting for the provider's sector number and inclusion proof",
            )
        sector = sector_with_deal(self.node, proposal.provider, record.sector_number, record.deal_id, ts)
        if sector is None:
            return InclusionCheck(
                sector_size,
                None,
                f"sector {record.sector_number} is not on chain with deal {record.deal_id} (yet)",
            )
        comm_d_cid = sector.unsealed_cid
        try:
            proof = PieceInclusionProof.from_bytes(record.inclusion_proof)
            comm_d = commitment_of_v1(comm_d_cid)
            comm_p = commitment_of_v1(proposal.piece_cid)
        except (MalformedProof, DecodeError) as exc:
            return InclusionCheck(
                sector_size, comm_d_cid, f"bad: the provider's inclusion proof cannot be read: {exc}"
            )
        if not verify_piece_inclusion(
            proof,
            comm_d=comm_d,
            sector_size=sector_size,
            comm_p=comm_p,
            piece_size=proposal.piece_size,
            offset=record.piece_offset,
        ):
            return InclusionCheck(
                sector_size,
                comm_d_cid,
                f"bad: the provider's inclusion proof does not show piece {proposal.piece_cid} in sector "
                f"{record.sector_number}'s CommD {comm_d_cid}",
            )
        return InclusionCheck(sector_size, comm_d_cid, None)

    async def _follow_active(self, record: ClientDealRecord) -> None:
        """After activation: the chain alone says when the deal ends."""
        changes = self.node.chain.subscribe()
        proposal = record.client_deal_proposal.proposal
        async with changes:
            while True:
                record = self.store.get(record.key) or record
                if record.state != S.StorageDealActive or record.deal_id is None:
                    return
                head = self.node.chain.head()
                on_chain = await self._call(self.node.state.storage_deal, record.deal_id, head)
                if on_chain is not None and on_chain.state.slash_epoch != -1:
                    await self._move(
                        record, S.StorageDealSlashed, f"slashed at epoch {on_chain.state.slash_epoch}"
                    )
                    return
                if head.height >= proposal.end_epoch:
                    await self._move(
                        record, S.StorageDealExpired, f"the deal ended at epoch {proposal.end_epoch}"
                    )
                    return
                if on_chain is None:
                    await self._move(
                        record, S.StorageDealSlashed, "the deal is gone from the market before its end"
                    )
                    return
                try:
                    await changes.receive()
                except trio.EndOfChannel:
                    changes = self.node.chain.subscribe()


# -- the protocols' client side --------------------------------------------------------------------------


async def send_proposal(
    host: Libp2pHost, peer: PeerID, params: DealParams, *, timeout: float = STREAM_TIMEOUT
) -> DealResponse:
    """Propose a deal over `/fil/storage/mk/1.2.0` (on a connection to peer); the provider's answer, or
    ClientError."""
    return await DEAL.ask(
        host, peer, params, what="the deal proposal", error=ClientError, timeout=timeout, dial=False
    )


async def request_status(
    host: Libp2pHost,
    peer: PeerID,
    record: ClientDealRecord,
    node: FullNode,
    *,
    timeout: float = STREAM_TIMEOUT,
) -> DealStatusResponse:
    """Ask over `/fil/storage/status/1.2.0` (on a connection to peer), signing the deal's UUID with the
    wallet key of the deal; ClientError if no answer can be had."""
    signature = node.wallet.sign(record.wallet, record.deal_uuid)
    return await STATUS.ask(
        host,
        peer,
        DealStatusRequest(record.deal_uuid, signature),
        what="the status request",
        error=ClientError,
        timeout=timeout,
        dial=False,
    )
