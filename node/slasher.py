"""The slasher: a node service that reports the consensus faults it sees (Lotus's consensus fault
reporter, chain/gen/slashfilter/slashsvc, `[FaultReporter] EnableConsensusFaultReporter`).

Every block header the node receives or makes goes to `Slasher.observe(header)` (the syncer's block
reception and the node's own block submission call it; it never blocks: headers wait in a bounded
queue, and a full queue drops them with a warning). For each header the service, off the event loop:

1. skips it when it is too old to report (below the head by finality: the actor's syscall would refuse
   it), and checks that the miner's worker at the block's lookback signed it (a forged header could
   otherwise take the slot of the miner's real block, and a report built on it would fail);
2. records it in the slash filter (chain/consensus/slashfilter.py, durable in the repo's LevelDB under
   `/slashfilter/`, pruned below finality), which returns the faults it proves with earlier blocks:
   double-fork mining, time-offset mining, parent grinding (with its witness).

Each fault is then reported, one at a time per miner:

- once the head has reached the fault's epoch (the actor wants a fault from before the report's epoch);
- unless it is too old by then, or the miner is already barred for a fault at or after this epoch (the
  actor would refuse it: the miner has been punished for the period), or it was claimed before (the
  filter keeps claims, so a fault is reported once, also across restarts);
- with ReportConsensusFault (BlockHeader1, BlockHeader2, BlockHeaderExtra: the headers' CBOR) from the
  configured wallet address (`[slasher] address`, else the wallet's default) through the message pool's
  MpoolPushMessage (gas estimated: a report the VM would refuse fails here and is not sent);
- then the service waits for the message to execute (giving up once the chain is well past the point
  where the report could still succeed) and logs the outcome: exit code, the tipset, and how long the
  miner is barred.

A claim is made before the message is pushed: a crash between the two loses that report rather than
sending it twice. `outcomes` keeps what became of each report, newest last.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog
import trio

from actors.miner.types import MinerMethod
from chain.chainstore.metadata import LevelDBMetadata, MemoryMetadata, MetadataStore
from chain.chainstore.store import ChainStore, ChainStoreError
from chain.consensus.election import InvalidWorker, worker_key_address
from chain.consensus.slashfilter import SLASHFILTER_NAMESPACE, FaultEvidence, SlashFilter
from chain.crypto.signature import SignatureError, verify
from chain.encoding.cid import CID
from chain.encoding.errors import DecodeError
from chain.mpool.errors import MpoolError
from chain.mpool.push import message_to_push
from chain.stmgr.actors import ActorNotFound, StateQueryError
from chain.stmgr.miners import miner_info
from chain.stmgr.search import MsgLookup
from chain.store.blockstore import BlockNotFound
from chain.store.lru import Lru
from chain.types.address import Address
from chain.types.block import BlockHeader
from chain.types.tipset import TipSet, TipSetKey
from node.config import SlasherConfig
from node.fullnode import FullNode

if TYPE_CHECKING:
    from trio_typing import TaskStatus

_log = structlog.get_logger(__name__)

# Headers waiting to be checked; more are dropped (with a warning) rather than slowing the caller.
QUEUE_SIZE: Final = 1024
# Outcomes kept in memory.
OUTCOMES_KEPT: Final = 256
# Headers of recently observed blocks, so that evidence does not depend on when the syncer stores them.
RECENT_HEADERS: Final = 4096


class SlasherError(Exception):
    """The slasher cannot run as configured (no reporting address in the wallet)."""


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What became of one detected fault."""

    evidence: FaultEvidence
    message: CID | None = None  # the ReportConsensusFault message, if one was sent
    exit_code: int | None = None  # its receipt's, once executed
    executed_at: int | None = None  # the height of the tipset it executed in
    barred_until: int | None = None  # the miner's ConsensusFaultElapsed after it
    skipped: str | None = None  # why no report was sent, or why its execution is unknown


def slasher_store(chain: ChainStore) -> MetadataStore:
    """The filter's records in the repo's LevelDB (memory for an in-memory chain store)."""
    db = getattr(chain.blockstore, "db", None)
    return MemoryMetadata() if db is None else LevelDBMetadata(db, namespace=SLASHFILTER_NAMESPACE)


class Slasher:
    """See the module doc. A node service (`run`); `observe` is its entry point."""

    name = "slasher"

    def __init__(
        self,
        node: FullNode,
        config: SlasherConfig,
        *,
        store: MetadataStore | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.node = node
        self.config = config
        self.filter = SlashFilter(
            slasher_store(node.chain) if store is None else store,
            self._stored_header,
            finality=node.policy.chain_finality,
        )
        self._send, self._receive = trio.open_memory_channel[BlockHeader](queue_size)
        self._locks: dict[Address, trio.Lock] = {}
        self._recent: Lru[CID, BlockHeader] = Lru(RECENT_HEADERS)
        self.reporter: Address | None = None
        self.outcomes: deque[ReportOutcome] = deque(maxlen=OUTCOMES_KEPT)
        self.received = 0  # headers handed to observe
        self.checked = 0  # headers checked (recorded, or refused)
        self.dropped = 0  # headers dropped on a full queue

    # -- the entry point -----------------------------------------------------------------------------
    def observe(self, header: BlockHeader) -> None:
        """A block header this node received or made (call from the trio loop; never blocks)."""
        self.received += 1
        try:
            self._send.send_nowait(header)
        except trio.WouldBlock:
            self.dropped += 1
            _log.warning(
                "slasher.queue_full: block not checked", block=str(header.cid()), height=header.height
            )

    # -- the service ---------------------------------------------------------------------------------
    async def run(self, *, task_status: "TaskStatus[None]" = trio.TASK_STATUS_IGNORED) -> None:
        self.reporter = self._reporter_address()
        records = await self.node.run_sync(len, self.filter)  # a LevelDB scan
        _log.info(
            "slasher.started", reporter=str(self.reporter), finality=self.filter.finality, records=records
        )
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for header in self._receive:
                try:
                    found = await self.node.run_sync(self._check, header)
                except Exception:  # one block the slasher cannot judge must not stop the node
                    _log.exception("slasher.check_failed", block=str(header.cid()), height=header.height)
                    found = []
                self.checked += 1
                for evidence in found:
                    nursery.start_soon(self._report, evidence)

    def _reporter_address(self) -> Address:
        wallet = self.node.wallet
        text = self.config.address
        address = Address.parse(text) if text else wallet.default()
        if address is None:
            raise SlasherError(
                "slasher.address is empty and the wallet has no default address: "
                "set slasher.address to a wallet address that can pay for the reports"
            )
        if not wallet.has(address):
            raise SlasherError(
                f"slasher.address {address} is not in the wallet: the reports are signed with it"
            )
        return address

    # -- checking a header (worker thread) ---------------------------------------------------------------
    def _stored_header(self, cid: CID) -> BlockHeader | None:
        recent = self._recent.get(cid)
        if recent is not None:
            return recent
        try:
            return self.node.chain.get_block(cid)
        except (BlockNotFound, DecodeError):
            return None

    def _parent(self, header: BlockHeader) -> TipSet | None:
        try:
            return self.node.chain.load_tipset(TipSetKey(header.parents))
        except ChainStoreError:
            return None

    def _check(self, header: BlockHeader) -> list[FaultEvidence]:
        head = self.node.chain.head()
        if header.height < self.filter.reportable_from(head.height):
            return []
        parent = self._parent(header)
        problem = self._signature_problem(header, head if parent is None else parent)
        if problem is not None:
            _log.warning(
                "slasher.unsigned_block: not recorded",
                block=str(header.cid()),
                miner=str(header.miner),
                height=header.height,
                reason=problem,
            )
            return []
        self._recent.put(header.cid(), header)
        return self.filter.observe(
            header, parent_height=None if parent is None else parent.height, head_height=head.height
        )

    def _signature_problem(self, header: BlockHeader, base: TipSet) -> str | None:
        """Why header is not signed by its miner's worker at the block's lookback on base, or None."""
        sm = self.node.state
        if header.block_sig is None:
            return "no block signature"
        try:
            _, lookback_state = sm.lookback(base, header.height)
            worker = worker_key_address(sm.tree(lookback_state), header.miner)
            verify(header.block_sig, worker, header.signing_bytes())
        except (ActorNotFound, StateQueryError, InvalidWorker, ChainStoreError) as exc:
            return f"no worker for {header.miner} at the block's lookback: {exc}"
        except SignatureError as exc:
            return f"not signed by the worker: {exc}"
        return None

    # -- reporting -----------------------------------------------------------------------------------
    async def _report(self, evidence: FaultEvidence) -> None:
        lock = self._locks.setdefault(evidence.miner, trio.Lock())
        async with lock:  # one report of a miner at a time: the first may make the next pointless
            try:
                outcome = await self._try_report(evidence)
            except Exception as exc:  # a report that fails must not stop the node (nor the next one)
                _log.exception("slasher.report_error", **evidence.log_fields())
                outcome = ReportOutcome(evidence, skipped=f"error: {exc}")
        self.outcomes.append(outcome)

    async def _try_report(self, evidence: FaultEvidence) -> ReportOutcome:
        node = self.node
        if await node.run_sync(self.filter.claimed, evidence):
            _log.debug("slasher.already_reported", **evidence.log_fields())
            return ReportOutcome(evidence, skipped="reported before")
        _log.warning("slasher.fault_detected", **evidence.log_fields())
        await self._head_at(evidence.epoch)
        head = node.chain.head()
        if evidence.oldest < self.filter.reportable_from(head.height):
            _log.info("slasher.fault_too_old: not reported", head=head.height, **evidence.log_fields())
            return ReportOutcome(evidence, skipped="too old")
        barred = await node.run_sync(self._barred_until, evidence.miner, head, True)
        if barred is not None and evidence.epoch < barred:
            _log.info(
                "slasher.already_barred: not reported",
                barred_until=barred,
                head=head.height,
                **evidence.log_fields(),
            )
            return ReportOutcome(evidence, barred_until=barred, skipped="already barred")
        if not await node.run_sync(self.filter.claim, evidence):
            return ReportOutcome(evidence, skipped="reported before")
        assert self.reporter is not None  # set by run
        message = message_to_push(
            evidence.miner, self.reporter, method=MinerMethod.ReportConsensusFault, params=evidence.params()
        )
        try:
            signed = await node.run_sync(node.pusher.push_message, message)
        except MpoolError as exc:
            _log.error("slasher.report_failed", reason=str(exc), **evidence.log_fields())
            return ReportOutcome(evidence, skipped=f"push failed: {exc}")
        cid = signed.cid()
        _log.info(
            "slasher.report_sent", message=str(cid), reporter=str(self.reporter), **evidence.log_fields()
        )
        # Past this height the report cannot succeed any more; wait a finality more for its receipt.
        give_up = evidence.oldest + 2 * self.filter.finality
        found = await self._executed(cid, give_up)
        if found is None:
            _log.warning("slasher.report_not_executed", message=str(cid), head=node.chain.head().height)
            return ReportOutcome(evidence, cid, skipped="not executed")
        barred = await node.run_sync(self._barred_until, evidence.miner, found.tipset)
        code = found.receipt.exit_code
        fields = {
            "message": str(cid),
            "exit_code": code,
            "executed_at": found.tipset.height,
            "gas_used": found.receipt.gas_used,
            "barred_until": barred,
            **evidence.log_fields(),
        }
        if code == 0:
            _log.info("slasher.report_executed", **fields)
        else:
            _log.warning("slasher.report_refused", **fields)
        return ReportOutcome(evidence, cid, code, found.tipset.height, barred)

    def _barred_until(self, miner: Address, ts: TipSet, after: bool = False) -> int | None:
        """The miner's ConsensusFaultElapsed in ts's parent state, or with `after` in the state after ts
        (what a report sent now runs on); None when it is not a miner there."""
        sm = self.node.state
        tree = sm.tree(sm.state_of(ts).state_root if after else ts.parent_state_root)
        try:
            return miner_info(tree, miner).consensus_fault_elapsed
        except (ActorNotFound, StateQueryError):
            return None

    async def _head_at(self, height: int) -> None:
        """Until the head is at height or above."""
        await self._until(lambda head: head.height >= height)

    async def _until(self, condition: Callable[[TipSet], bool]) -> None:
        chain = self.node.chain
        changes = chain.subscribe()
        while True:
            async with changes:
                while not condition(chain.head()):
                    try:
                        await changes.receive()
                    except trio.EndOfChannel:
                        break  # the store dropped a slow subscriber: subscribe again
                else:
                    return
            changes = chain.subscribe()

    async def _executed(self, cid: CID, give_up: int) -> MsgLookup | None:
        """The message's execution, or None once the head passes give_up without it."""
        found: list[MsgLookup] = []
        async with trio.open_nursery() as nursery:

            async def wait() -> None:
                found.append(await self.node.wait_msg(cid, confidence=0))
                nursery.cancel_scope.cancel()

            async def deadline() -> None:
                await self._until(lambda head: head.height > give_up)
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait)
            nursery.start_soon(deadline)
        return found[0] if found else None


def slasher_service(node: FullNode, config: SlasherConfig) -> Slasher | None:
    """The node's slasher when `[slasher] enabled`, else None."""
    return Slasher(node, config) if config.enabled else None
