"""The pure checks of a block, done once per node, and done ahead in a worker process during a catch-up.

Two kinds of checks in block validation depend on nothing but their inputs: a BLS signature by the
miner's worker (the block signature, the ticket and the election proof, each a BLS signature over
bytes the header and the chain determine) and the Winning PoSt (a vanilla proof over the challenged
sectors' commitments). They are also the costly ones: ~1.3-1.6 ms of CPU per BLS check done alone with
blspy, which holds the GIL, ~0.4 ms in the worker process's batches (below), and ~0.2 ms per Winning
PoSt of a 2 KiB sector in Python. Validation computes their inputs from the state as before, and asks
a node's `Verified`:

- a check that passed before with the same inputs (a digest of all of them) is not done again: the
  gossip block check (`validate_header`) and full validation (`validate_block`) of a gossiped block
  check its signatures once, not twice;
- a check a worker process is doing for the same inputs is waited for: during a catch-up the syncer
  computes the inputs of the checks of the tipsets ahead (chain/sync/ahead.py) and hands them to a
  `VerifierPool`, so that the BLS pairings and the PoSt hashing of tipset n+1 run on the other core
  while tipset n executes here. The worker verifies the BLS signatures of each hand-off, and of the
  hand-offs already waiting in its pipe (up to WORKER_BATCH_CHECKS checks), as one batch with random
  weights (chain.crypto.signature.verify_bls_batch); a batch that fails is verified one by one, so
  each check's outcome is the one it has alone;
- anything else, or a check the worker process found failing, is done here, as before, and raises
  the same error with the same message.

The checks computed ahead are also kept, by block (`keep_ahead`, `take_ahead`: `BlockChecks`), with the
values they were computed from that validation computes as well (the worker's key, the beacon entry
drawn from, the lookback state): validation takes a check made ahead instead of building its inputs
again (signing bytes, VRF randomness, the challenged sectors' commitments, the digest of it all) only
when its own values are those, so the check is exactly the one it would have built.

Only passes are remembered (bounded, least recently used forgotten first): nothing is ever accepted
that was not checked with exactly these inputs, in this process or in its worker.

One `Verified` per StateManager (`verified(sm)`), i.e. per node: nodes sharing a process (tests,
benchmarks) do not share what each checked.
"""

import contextlib
import hashlib
import multiprocessing
import pickle
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Final

from chain.crypto.signature import Signature, SigType, is_valid, verify, verify_bls_batch
from chain.encoding.cid import CID
from chain.store.lru import Lru
from chain.types.address import Address, Protocol
from chain.types.beacon import BeaconEntry
from proofs import post
from proofs.vanilla import ProofDecodeError

if TYPE_CHECKING:
    # Only named here: the worker process imports this module (its _serve), and the state manager
    # would bring the VM and every actor with it (~0.6 s of CPU at each worker's start).
    from chain.stmgr.manager import StateManager

DEFAULT_SIZE: Final = 8192
# Blocks whose checks computed ahead are kept until validated: CheckAhead reaches at most the two
# batches of tipsets a sync holds; what a failed sync leaves behind goes first.
AHEAD_BLOCKS: Final = 1024
_SIG: Final = 0
_POST: Final = 1
_HERE: Final = "here"
_AHEAD: Final = "ahead"
CHECK_WORKER_NAME: Final = "filpy-checks"  # the worker process's name (ps, multiprocessing)
# The worker takes further hand-offs already in its pipe, up to this many checks, to verify their BLS
# signatures as one batch; the bound keeps the wait for the first hand-off's outcomes short.
WORKER_BATCH_CHECKS: Final = 128
_WIRE_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL  # the worker runs this interpreter: it reads every protocol


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """signature by signer's key over data. fixed_by: when given, bytes that fix signature and data
    (a header's CID fixes its signature and signing bytes), digested for the key instead of them: a
    header's signing bytes with its Winning PoSt are some 15 KB to hash."""

    signature: Signature
    signer: Address
    data: bytes
    fixed_by: bytes | None = field(default=None, repr=False, compare=False)
    _key: bytes = field(init=False, repr=False, compare=False)  # set by key(): the worker needs none

    def key(self) -> bytes:
        """A digest of every input: equal keys, equal outcomes."""
        try:
            return self._key
        except AttributeError:
            sig = self.signature
            signer = self.signer.to_bytes()
            if self.fixed_by is None:
                key = _digest(b"sig", bytes((int(sig.type),)), signer, sig.data, self.data)
            else:
                key = _digest(b"sig-fixed", signer, self.fixed_by)
            object.__setattr__(self, "_key", key)
            return key

    def run(self) -> bool:
        return is_valid(self.signature, self.signer, self.data)

    def bls(self) -> tuple[bytes, bytes, bytes] | None:
        """(signature, public key, message) when run() is exactly verify_bls of them, else None."""
        if self.signature.type != SigType.BLS or self.signer.protocol != Protocol.BLS:
            return None
        return self.signature.data, self.signer.payload, self.data

    def wire(self) -> tuple[object, ...]:
        """Plain values for the worker process (cheap to pickle)."""
        return (_SIG, int(self.signature.type), self.signature.data, self.signer.to_bytes(), self.data)


@dataclass(frozen=True, slots=True)
class WinningPoStCheck:
    """proof_bytes prove the challenged sectors (proofs.post.verify_winning_post)."""

    proof_type: int
    randomness: bytes
    sectors: tuple[post.PublicSector, ...]
    proof_bytes: bytes
    _key: bytes = field(init=False, repr=False, compare=False)  # set by key(): the worker needs none

    def key(self) -> bytes:
        """A digest of every input: equal keys, equal outcomes."""
        try:
            return self._key
        except AttributeError:
            parts = [b"post", self.proof_type.to_bytes(8, "big"), self.randomness, self.proof_bytes]
            for sector in self.sectors:
                parts += [sector.sector_number.to_bytes(8, "big"), sector.comm_r]
            key = _digest(*parts)
            object.__setattr__(self, "_key", key)
            return key

    def run(self) -> bool:
        try:
            return post.verify_winning_post(
                self.proof_type, self.randomness, list(self.sectors), self.proof_bytes
            )
        except (ProofDecodeError, ValueError):
            return False

    def wire(self) -> tuple[object, ...]:
        """Plain values for the worker process (cheap to pickle)."""
        sectors = tuple((s.sector_number, s.comm_r) for s in self.sectors)
        return (_POST, self.proof_type, self.randomness, sectors, self.proof_bytes)


Check = SignatureCheck | WinningPoStCheck


@dataclass(frozen=True, slots=True)
class HeaderChecks:
    """A header's checks computed ahead (chain/consensus/validation.py checks_ahead) and the values they
    were computed from that validation computes too. The header's CID fixes everything else of their
    inputs (its signing bytes, miner, height, proofs, parents and so the parent's smallest ticket)."""

    worker: Address  # the miner's worker key at the lookback state
    beacon_base: BeaconEntry  # the entry the election, ticket and Winning PoSt randomness is drawn from
    lookback_state: CID  # where the Winning PoSt's sectors were challenged
    block_signature: SignatureCheck
    election: SignatureCheck
    ticket: SignatureCheck
    winning_post: WinningPoStCheck | None  # None: the header carries no single proof, or no sectors


@dataclass(frozen=True, slots=True)
class BlockChecks:
    """A block's checks computed ahead: its header's (None when their inputs could not be computed)
    and the signatures of its secp256k1 messages from key-address senders, by SignedMessage CID (the
    signer is the sender itself)."""

    header: HeaderChecks | None
    messages: dict[CID, SignatureCheck]

    def all(self) -> list[Check]:
        out: list[Check] = []
        if self.header is not None:
            h = self.header
            out += [h.block_signature, h.election, h.ticket]
            if h.winning_post is not None:
                out.append(h.winning_post)
        out += self.messages.values()
        return out


def _digest(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def from_wire(item: tuple[Any, ...]) -> Check:
    """The check a worker process was sent."""
    if item[0] == _SIG:
        _, sig_type, sig, signer, data = item
        return SignatureCheck(Signature(SigType(sig_type), sig), Address.from_bytes(signer), data)
    _, proof_type, randomness, sectors, proof_bytes = item
    public = tuple(post.PublicSector(number, comm_r) for number, comm_r in sectors)
    return WinningPoStCheck(proof_type, randomness, public, proof_bytes)


def run_checks(items: Sequence[tuple[Any, ...]]) -> list[bool]:
    """Each check's outcome: what the worker process runs on what it is sent."""
    return outcomes([from_wire(item) for item in items])


def outcomes(checks: Sequence[Check]) -> list[bool]:
    """Each check's outcome, the BLS signatures verified as a batch (verify_bls_batch: each outcome as
    if verified alone)."""
    bls: list[int] = []
    inputs: list[tuple[bytes, bytes, bytes]] = []
    found: list[bool] = []
    for i, check in enumerate(checks):
        bls_inputs = check.bls() if isinstance(check, SignatureCheck) else None
        if bls_inputs is None:
            found.append(check.run())
        else:
            found.append(False)
            bls.append(i)
            inputs.append(bls_inputs)
    for i, ok in zip(bls, verify_bls_batch(inputs), strict=True):
        found[i] = ok
    return found


class Verified:
    """Checks that passed, and checks under way in a worker process; see the module doc. Thread-safe."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._passed: Lru[bytes, str] = Lru(size)  # key -> where it passed: _HERE or _AHEAD
        self._pending: dict[bytes, tuple[VerifierPool, int]] = {}  # key -> (pool, batch number)
        self._lock = threading.Lock()
        self._computed: Lru[CID, BlockChecks] = Lru(AHEAD_BLOCKS)  # block CID -> its checks made ahead
        self.reused = 0  # checks answered by an earlier pass here
        self.ahead = 0  # checks answered by a worker process

    def passed(self, check: Check) -> bool:
        """Whether the check passed before (here or in a worker process), waiting for it if it is under
        way; False means: do it here."""
        key = check.key()
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            pool, batch = pending
            pool.wait(batch)  # its outcomes are recorded (or dropped, if the worker is gone) by then
        where = self._passed.get(key)
        if where is None:
            return False
        if where == _AHEAD:
            self.ahead += 1
        else:
            self.reused += 1
        return True

    def record(self, check: Check) -> None:
        self._passed.put(check.key(), _HERE)

    def run_together(self, checks: Sequence[Check]) -> None:
        """Run here, together, the checks neither passed nor under way (their BLS signatures as one
        batch, as the worker process does), remembering those that pass: what validates next finds them
        passed, and does again, to report it, any that failed."""
        with self._lock:
            todo = [c for c in checks if c.key() not in self._pending and self._passed.get(c.key()) is None]
        for check, ok in zip(todo, outcomes(todo), strict=True):
            if ok:
                self.record(check)

    def signature(self, check: SignatureCheck) -> None:
        """chain.crypto.signature.verify, once: raises SignatureError saying why the check fails."""
        if self.passed(check):
            return
        verify(check.signature, check.signer, check.data)
        self.record(check)

    def winning_post(self, check: WinningPoStCheck) -> bool:
        """proofs.post.verify_winning_post, once: False, or ProofDecodeError/ValueError, when it fails."""
        if self.passed(check):
            return True
        ok = post.verify_winning_post(
            check.proof_type, check.randomness, list(check.sectors), check.proof_bytes
        )
        if ok:
            self.record(check)
        return ok

    # -- checks done ahead ---------------------------------------------------------------------------
    def keep_ahead(self, block: CID, checks: BlockChecks) -> None:
        """Keep the checks computed ahead for block, for its validation to take."""
        self._computed.put(block, checks)

    def take_ahead(self, block: CID) -> BlockChecks | None:
        """The checks computed ahead for block, forgotten here (validation takes them once)."""
        return self._computed.pop(block)

    def submit(self, pool: "VerifierPool", checks: Sequence[Check]) -> int:
        """Have pool's worker process run the checks neither passed nor under way; how many."""
        keys: list[bytes] = []
        todo: list[Check] = []
        sending = (pool, -1)  # under way, its batch number not known yet
        with self._lock:
            for check in checks:
                key = check.key()
                if key in self._pending or self._passed.get(key) is not None:
                    continue
                self._pending[key] = sending
                keys.append(key)
                todo.append(check)
        if not todo:
            return 0

        def done(outcomes: Sequence[bool] | None) -> None:
            for key, ok in zip(keys, outcomes or (), strict=False):
                if ok:
                    self._passed.put(key, _AHEAD)
            with self._lock:
                for key in keys:
                    self._pending.pop(key, None)

        # Not under self._lock: the pool calls done (which takes it) while holding its own lock.
        batch = pool.run(todo, done)
        with self._lock:
            for key in keys:
                if self._pending.get(key) is sending:
                    self._pending[key] = (pool, batch)
        return len(todo)

    def __len__(self) -> int:
        return len(self._passed)


def hand_off(checks: Sequence[Check]) -> bytes:
    """What the worker process is sent for checks: their wire forms pickled, which its Connection.recv
    reads back. Pickled here, not by Connection.send: multiprocessing's pickler (a reducer table copied
    per call, a BytesIO) costs the validating thread 2-3 times more (12.5 -> 4.7 us for a devnet
    tipset's 31 KB of checks)."""
    return pickle.dumps([check.wire() for check in checks], _WIRE_PROTOCOL)


def _serve(conn: Connection) -> None:
    """The worker process: run each batch of checks received, send back the outcomes, until None.
    Batches already waiting in the pipe are run together (up to WORKER_BATCH_CHECKS checks), their
    outcomes still sent back one batch at a time, in order."""
    while True:
        try:
            batches = [conn.recv()]
            while batches[-1] is not None and conn.poll(0) and sum(map(len, batches)) < WORKER_BATCH_CHECKS:
                batches.append(conn.recv())
        except (EOFError, OSError):
            return
        stop = batches[-1] is None
        if stop:
            batches.pop()
        outcomes = run_checks([item for batch in batches for item in batch])
        start = 0
        for batch in batches:
            conn.send(outcomes[start : start + len(batch)])
            start += len(batch)
        if stop:
            return


class VerifierPool:
    """One worker process that runs checks, started with spawn (nothing of this process, its threads,
    locks or open stores, is inherited) and fed through a pipe by the threads that validate. There is
    no helper thread here: one would take the GIL at every pipe write and every large hash of the
    validating thread, which costs more than the checks it moves. Outcomes come back in order and are
    read by whoever waits for one (`wait`), or on the next `run`. `close()` stops the process; a pool
    is also a context manager."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=_serve, args=(child,), name=CHECK_WORKER_NAME, daemon=True)
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._sent = 0  # batches sent
        self._received = 0  # batches whose outcomes were read
        self._callbacks: dict[int, Callable[[Sequence[bool] | None], None]] = {}
        self._broken = False
        # Wait for the worker to be up, with what it imports, before the first block needs it.
        self.wait(self.run([], lambda _: None))

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def run(self, checks: Sequence[Check], done: Callable[[Sequence[bool] | None], None]) -> int:
        """Send a batch of checks; done(outcomes) is called once they are read (None: the worker is
        gone). Returns the batch's number."""
        with self._lock:
            batch = self._sent
            self._sent += 1
            self._callbacks[batch] = done
            if self._broken:
                self._finish(batch, None)
                return batch
            self._read(block=False)  # keep the worker's side of the pipe from filling up
            try:
                self._conn.send_bytes(hand_off(checks))
            except (OSError, ValueError):
                self._fail()
            return batch

    def wait(self, batch: int) -> None:
        """Until the outcomes of batch have been handed to its done."""
        with self._lock:
            while batch in self._callbacks and not self._broken:
                self._read(block=True)

    def _read(self, *, block: bool) -> None:
        """Read outcomes: one batch's (block=True), or those already there."""
        try:
            while self._received < self._sent and (block or self._conn.poll(0)):
                outcomes = self._conn.recv()
                self._finish(self._received, outcomes)
                self._received += 1
                block = False
        except (EOFError, OSError):
            self._fail()

    def _finish(self, batch: int, outcomes: Sequence[bool] | None) -> None:
        done = self._callbacks.pop(batch, None)
        if done is not None:
            done(outcomes)

    def _fail(self) -> None:
        """The worker is gone: what it was asked is done by the validating threads instead."""
        self._broken = True
        for batch in sorted(self._callbacks):
            self._finish(batch, None)

    def close(self) -> None:
        with self._lock:
            if not self._broken:
                with contextlib.suppress(OSError, ValueError):
                    self._conn.send(None)
            self._fail()
            self._conn.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def __enter__(self) -> "VerifierPool":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_registry: "weakref.WeakKeyDictionary[StateManager, Verified]" = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def verified(sm: "StateManager") -> Verified:
    """The checks done on behalf of this StateManager's node."""
    with _registry_lock:
        found = _registry.get(sm)
        if found is None:
            found = _registry[sm] = Verified()
        return found
