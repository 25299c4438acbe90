"""Making a genesis from a template: the state (built by running the actors on the VM), the genesis
block, the CAR that carries both, and loading such a CAR back.

The state is built as Lotus's genesis builds it (lotus chain/gen/genesis/genesis.go, miners.go), with the
real actors wherever an actor method does the job:

1. The singletons (system, init, reward, cron, power, market) get an actor entry and run their
   constructors from the system actor. The reward actor holds the 1.1 billion FIL it mints from; the
   burnt-funds actor f099 and the reserve f090 are accounts whose state names their own ID address
   (no key can spend from them), f090 holding whatever the template does not allocate, so that the
   balances add up to the total supply (which is what chain/vm/circulating.py assumes).
2. Template balances are minted to the system actor and sent on: a send to a key address creates its
   account (the VM runs the account constructor), a multisig is made by init.Exec with its balance as
   the message value (so its vesting InitialBalance is recorded by its own constructor).
3. The init actor's next ID is raised to 1000, so that miners are t01000, t01001... as in Lotus.
4. Each miner: power.CreateMiner from its owner (PowerBalance as value); then each of its committed-capacity
   sectors is sealed for real (node/preseal.py) and committed through the miner actor itself,
   PreCommitSector then ProveCommitSector from the worker, so the actor checks a real seal proof, locks
   the pledge, assigns the sector to a deadline and claims its power from the power actor.
   Lotus activates pre-sealed sectors at epoch 0 by calling ConfirmSectorProofsValid as the power actor;
   filpy's ProveCommitSector verifies the proof itself and normally needs the interactive seed drawn
   `pre_commit_challenge_delay` epochs after the pre-commit. The genesis VM therefore runs with that delay
   set to -1 (and only that changed): sectors are pre-committed and proven at epoch 0, with seal ticket
   and seed drawn at epoch -1 from the genesis block's ticket and beacon entry (GenesisRandomness: what a
   chain returns for epochs up to its genesis).
5. As Lotus, the power actor's "this epoch" raw and QA power are set to the genesis totals, so that the
   first epoch sees the pre-sealed power.

The block has Lotus's genesis shape: miner f00, parents = [the Filecoin genesis block] (the CBOR
document Lotus links every genesis to), height 0, weight 0, empty message and receipt AMTs (legacy
layout), a ticket, one beacon entry (round 0, 32 zero bytes) and ParentBaseFee = the initial base fee.
Lotus draws the ticket at random; filpy derives it from the network name so that the same template gives
the same genesis CID. A network that runs its own drand beacon (node/beacon) passes its round 0 instead
(round 0, the drand chain's 32-byte group hash): the genesis then commits to the beacon's chain info,
and the first block's entries verify from it (chain/consensus/drand.py). The entry only feeds the
pre-sealed sectors' interactive seeds, so the state and the sectors are the same either way.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Final

from actors import builtin
from actors.account.types import AccountState
from actors.cron.types import GENESIS_ENTRIES
from actors.cron.types import ConstructorParams as CronConstructorParams
from actors.dispatch import METHOD_CONSTRUCTOR, METHOD_SEND, encode_params
from actors.init.types import ConstructorParams as InitConstructorParams
from actors.init.types import ExecParams, ExecReturn, InitMethod
from actors.miner.policy import SEAL_PROOFS
from actors.miner.state import MinerState
from actors.miner.types import MinerMethod, PreCommitSectorParams, ProveCommitSectorParams
from actors.multisig.types import ConstructorParams as MultisigConstructorParams
from actors.power.state import PowerState
from actors.power.types import CreateMinerParams, CreateMinerReturn, PowerMethod
from chain.crypto.randomness import DomainSeparationTag, blake2b_256, draw_randomness_from_digest
from chain.encoding import dagcbor
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID, DAG_CBOR
from chain.encoding.errors import DecodeError
from chain.encoding.multihash import SHA2_256
from chain.params import Policy
from chain.state.amt import amt_v0_from_list, amt_v0_to_list
from chain.state.init_state import InitState
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree, StateTreeError
from chain.store.blockstore import BlockNotFound, Blockstore, MemoryBlockstore, get_cbor, put_cbor
from chain.store.car import import_car, walk_dag, write_car
from chain.types.address import Address
from chain.types.beacon import BeaconEntry
from chain.types.block import BlockHeader, MsgMeta
from chain.types.election import ElectionProof, Ticket
from chain.types.message import TOTAL_FILECOIN
from chain.vm.exitcode import ExitCode
from chain.vm.tipset_apply import implicit_message
from chain.vm.vm import VM
from node.atomic import write_atomic
from node.genesis_template import (
    MINER_START_ID,
    REWARD_ACTOR_BALANCE,
    AccountEntry,
    GenesisTemplate,
    MinerEntry,
    MultisigEntry,
)
from node.preseal import PresealedMiner, PresealedSector, seal_cc_sector

# The block every Lotus genesis names as its parent: a CBOR map announcing the Filecoin network (lotus
# chain/gen/genesis/genblock.go). Its keys are not in DAG-CBOR order, so it is stored and copied as
# bytes, never decoded; its CID is dag-cbor + sha2-256.
FILECOIN_GENESIS_BLOCK: Final = bytes.fromhex(
    "a5684461746574696d6573323031372d30352d30352030313a32373a3531674e6574776f726b6846696c65636f696e"
    "65546f6b656e6846696c65636f696e6c546f6b656e416d6f756e7473a36b546f74616c537570706c796d322c3030"
    "302c3030302c303030664d696e6572736d312c3430302c3030302c3030306c50726f746f636f6c4c616273a36b44"
    "6576656c6f706d656e746b3330302c3030302c3030306b46756e6472616973696e676b3230302c3030302c303030"
    "6a466f756e646174696f6e6b3130302c3030302c303030674d657373616765784854686973206973207468652047"
    "656e6573697320426c6f636b206f66207468652046696c65636f696e20446563656e7472616c697a65642053746f"
    "72616765204e6574776f726b2e"
)
FILECOIN_GENESIS_CID: Final = CID.hash_of(FILECOIN_GENESIS_BLOCK, codec=DAG_CBOR, mh_code=SHA2_256)
GENESIS_BEACON_ENTRY: Final = BeaconEntry(0, bytes(32))
RESERVE_ACTOR_ADDR: Final = builtin.RESERVE_ACTOR_ADDR
SEAL_RAND_EPOCH: Final = -1
# Implicit messages pay no gas; the limit only has to be out of reach.
IMPLICIT_GAS_LIMIT: Final = 1 << 50


class GenesisError(Exception):
    """The genesis cannot be built from this template, or a genesis CAR is not a usable genesis."""


def genesis_ticket(network_name: str) -> Ticket:
    return Ticket(blake2b_256(b"filpy/genesis/ticket/" + network_name.encode()))


class GenesisRandomness:
    """Randomness for epochs up to the genesis: a chain draws it from the genesis block (its ticket, its
    beacon entry) for any epoch at or before height 0, and so does this source."""

    __slots__ = ("_beacon", "_chain")

    def __init__(self, ticket: Ticket, beacon: BeaconEntry) -> None:
        self._chain = ticket.digest()
        self._beacon = blake2b_256(beacon.data)

    @classmethod
    def of(cls, header: BlockHeader) -> "GenesisRandomness":
        if header.ticket is None or not header.beacon_entries:
            raise GenesisError("a genesis block needs a ticket and a beacon entry")
        return cls(header.ticket, header.beacon_entries[-1])

    def chain_digest(self, epoch: int) -> bytes:
        if epoch > 0:
            raise ValueError(f"epoch {epoch} is after the genesis")
        return self._chain

    def beacon_digest(self, epoch: int) -> bytes:
        if epoch > 0:
            raise ValueError(f"epoch {epoch} is after the genesis")
        return self._beacon


@dataclass(frozen=True, slots=True)
class Genesis:
    """A built genesis: the block, the store holding it and its state, and the miners' sealed sectors."""

    header: BlockHeader
    store: Blockstore
    miners: tuple[PresealedMiner, ...]

    @property
    def cid(self) -> CID:
        return self.header.cid()

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        """Every block of the genesis in CAR order: the header, then depth-first what it links to."""
        yield from walk_dag(self.store, [self.cid], follow=lambda cid: cid != FILECOIN_GENESIS_CID)
        yield FILECOIN_GENESIS_CID, FILECOIN_GENESIS_BLOCK


# -- building the state --------------------------------------------------------------------------------


def genesis_policy(policy: Policy) -> Policy:
    """The policy the genesis VM runs with: sectors are proven in the epoch they are pre-committed."""
    return replace(policy, pre_commit_challenge_delay=-1)


def sector_expiration(policy: Policy, proving_period_start: int) -> int:
    """Lotus's expiration of pre-sealed sectors: the last proving period that a maximal extension reaches."""
    periods = policy.max_sector_expiration_extension // policy.wpost_proving_period
    return (periods - 1) * policy.wpost_proving_period + proving_period_start - 1


def _code_name(code: int) -> str:
    try:
        return ExitCode(code).name
    except ValueError:
        return "(an actor-specific code)"


# Called after each pre-sealed sector with (sectors sealed so far, sectors to seal in all): what a
# progress bar needs.
SealProgress = Callable[[int, int], None]


class _Builder:
    """The genesis state under construction and the VM that changes it."""

    def __init__(
        self,
        template: GenesisTemplate,
        store: Blockstore,
        ticket: Ticket,
        progress: SealProgress | None,
        beacon_entry: BeaconEntry = GENESIS_BEACON_ENTRY,
    ) -> None:
        self.template = template
        self.progress = progress
        self.sealed = 0
        self.to_seal = sum(miner.sectors for miner in template.miners)
        self.policy = genesis_policy(template.policy)
        self.store = store
        self.tree = StateTree.new(store)
        self.randomness = GenesisRandomness(ticket, beacon_entry)
        self.vm = self._new_vm()
        self._nonce = 0

    def _new_vm(self) -> VM:
        return VM(
            self.tree,
            epoch=0,
            base_fee=self.policy.initial_base_fee,
            randomness=self.randomness,
            policy=self.policy,
        )

    def refresh_vm(self) -> None:
        """A VM at the same epoch over the current state (its circulating supply is read at creation)."""
        self.vm = self._new_vm()

    def implicit(
        self, sender: Address, to: Address, method: int, params: Any, value: int, what: str
    ) -> bytes:
        """Apply an implicit message; GenesisError naming `what` if it fails."""
        self._nonce += 1
        msg = implicit_message(
            to,
            method,
            encode_params(params),
            nonce=self._nonce,
            gas_limit=IMPLICIT_GAS_LIMIT,
            value=value,
            sender=sender,
        )
        ret = self.vm.apply_implicit_message(msg)
        if ret.exit_code != ExitCode.Ok:
            raise GenesisError(
                f"{what}: failed with exit code {ret.exit_code} {_code_name(ret.exit_code)}: {ret.error}"
            )
        return ret.receipt.return_data

    def install(self, address: Address, code: CID, params: Any = None, balance: int = 0) -> None:
        self.tree.set_actor(address, Actor(code, EMPTY_OBJECT_CID, 0, balance))
        self.implicit(
            builtin.SYSTEM_ACTOR_ADDR, address, METHOD_CONSTRUCTOR, params, 0, f"constructing {address}"
        )

    def unspendable_account(self, address: Address, balance: int) -> None:
        """An account whose key address is its own ID address: nobody can sign for it (f099, f090)."""
        head = put_cbor(self.store, AccountState(address).to_cbor())
        self.tree.set_actor(address, Actor(builtin.ACCOUNT_ACTOR_CODE, head, 0, balance))

    def mint(self, amount: int) -> None:
        """Create amount attoFIL on the system actor, for the next message to hand out."""
        system = self.tree.get_actor(builtin.SYSTEM_ACTOR_ADDR)
        assert system is not None  # installed first
        self.tree.set_actor(builtin.SYSTEM_ACTOR_ADDR, system.with_balance(system.balance + amount))

    def fund(self, address: Address, amount: int, what: str) -> Address:
        """Send amount from the system actor to address (creating its account); return its ID."""
        self.mint(amount)
        self.implicit(builtin.SYSTEM_ACTOR_ADDR, address, METHOD_SEND, None, amount, what)
        found = self.tree.lookup_id(address)
        assert found is not None  # the send created it
        return found

    def state_of(self, address: Address) -> Any:
        actor = self.tree.get_actor(address)
        if actor is None:
            raise GenesisError(f"no actor at {address}")
        return get_cbor(self.store, actor.head)

    # -- the steps --------------------------------------------------------------------------------------
    def singletons(self) -> None:
        template = self.template
        self.install(builtin.SYSTEM_ACTOR_ADDR, builtin.SYSTEM_ACTOR_CODE)
        self.install(
            builtin.INIT_ACTOR_ADDR, builtin.INIT_ACTOR_CODE, InitConstructorParams(template.network_name)
        )
        self.install(
            builtin.REWARD_ACTOR_ADDR, builtin.REWARD_ACTOR_CODE, encode_bigint(0), REWARD_ACTOR_BALANCE
        )
        self.install(builtin.CRON_ACTOR_ADDR, builtin.CRON_ACTOR_CODE, CronConstructorParams(GENESIS_ENTRIES))
        self.install(builtin.STORAGE_POWER_ACTOR_ADDR, builtin.POWER_ACTOR_CODE)
        self.install(builtin.STORAGE_MARKET_ACTOR_ADDR, builtin.MARKET_ACTOR_CODE)
        self.unspendable_account(builtin.BURNT_FUNDS_ACTOR_ADDR, 0)
        reserve = TOTAL_FILECOIN - REWARD_ACTOR_BALANCE - template.allocated()
        self.unspendable_account(RESERVE_ACTOR_ADDR, reserve)

    def accounts(self) -> None:
        network = self.template.policy.address_network
        for i, entry in enumerate(self.template.accounts):
            what = f"Accounts[{i}]"
            if isinstance(entry, AccountEntry):
                self.fund(
                    entry.owner, entry.balance, f"{what}: creating account {entry.owner.to_string(network)}"
                )
            else:
                self.multisig(entry, what)

    def multisig(self, entry: MultisigEntry, what: str) -> Address:
        params = MultisigConstructorParams(
            entry.signers, entry.threshold, entry.vesting_duration, entry.vesting_start
        )
        self.mint(entry.balance)
        exec_params = ExecParams(builtin.MULTISIG_ACTOR_CODE, params.to_bytes())
        ret = self.implicit(
            builtin.SYSTEM_ACTOR_ADDR,
            builtin.INIT_ACTOR_ADDR,
            InitMethod.Exec,
            exec_params,
            entry.balance,
            what,
        )
        return ExecReturn.from_bytes(ret).id_address

    def reserve_miner_ids(self) -> None:
        init = self.tree.get_actor(builtin.INIT_ACTOR_ADDR)
        assert init is not None
        state = InitState.from_cbor(get_cbor(self.store, init.head))
        if state.next_id > MINER_START_ID:
            raise GenesisError(
                f"accounts took IDs up to {state.next_id - 1}, past the miners' {MINER_START_ID}"
            )
        head = put_cbor(self.store, replace(state, next_id=MINER_START_ID).to_cbor())
        self.tree.set_actor(builtin.INIT_ACTOR_ADDR, init.with_head(head))

    def miner_accounts(self, index: int, entry: MinerEntry) -> PresealedMiner:
        """Fund the miner's owner and worker accounts; the miner itself is made after the ID bump."""
        what = f"Miners[{index}]"
        network = self.template.policy.address_network
        owner_key, worker_key = entry.owner_key(), entry.worker_key()
        owner, worker = Address.of_key(owner_key), Address.of_key(worker_key)
        self.fund(
            owner, entry.owner_balance, f"{what}: creating the owner account {owner.to_string(network)}"
        )
        self.fund(
            worker, entry.worker_balance, f"{what}: creating the worker account {worker.to_string(network)}"
        )
        return PresealedMiner(
            Address.new_id(MINER_START_ID + index),
            owner_key,
            worker_key,
            entry.seal_proof,
            SEAL_RAND_EPOCH,
            (),
        )

    def create_miner(self, index: int, entry: MinerEntry, miner: PresealedMiner) -> PresealedMiner:
        """power.CreateMiner, then each sector sealed, pre-committed and proven through the actor."""
        what = f"Miners[{index}]"
        seal_proof = entry.seal_proof
        params = CreateMinerParams(
            miner.owner, miner.worker, SEAL_PROOFS[seal_proof].window_post_proof, entry.peer_id, ()
        )
        ret = self.implicit(
            miner.owner,
            builtin.STORAGE_POWER_ACTOR_ADDR,
            PowerMethod.CreateMiner,
            params,
            entry.power_balance,
            f"{what}: power.CreateMiner",
        )
        created = CreateMinerReturn.from_bytes(ret)
        if created.id_address != miner.id_address:
            raise GenesisError(
                f"{what}: the miner was created as {created.id_address}, not {miner.id_address}"
            )
        address = created.id_address
        state = MinerState.from_cbor(self.state_of(address))
        expiration = sector_expiration(self.policy, state.proving_period_start)
        entropy = dagcbor.encode(address.to_cbor())
        ticket = draw_randomness_from_digest(
            self.randomness.chain_digest(SEAL_RAND_EPOCH),
            DomainSeparationTag.SealRandomness,
            SEAL_RAND_EPOCH,
            entropy,
        )
        interactive_epoch = self.policy.pre_commit_challenge_delay  # the pre-commit is at epoch 0
        seed = draw_randomness_from_digest(
            self.randomness.beacon_digest(interactive_epoch),
            DomainSeparationTag.InteractiveSealChallengeSeed,
            interactive_epoch,
            entropy,
        )
        sectors: list[PresealedSector] = []
        for number in range(entry.sectors):
            sector = seal_cc_sector(seal_proof, address.id, number, ticket, seed)
            precommit = PreCommitSectorParams(
                seal_proof, number, sector.sealed_cid, SEAL_RAND_EPOCH, (), expiration
            )
            self.implicit(
                miner.worker,
                address,
                MinerMethod.PreCommitSector,
                precommit,
                0,
                f"{what}: PreCommitSector {number}",
            )
            prove = ProveCommitSectorParams(number, sector.proof)
            self.implicit(
                miner.worker,
                address,
                MinerMethod.ProveCommitSector,
                prove,
                0,
                f"{what}: ProveCommitSector {number}",
            )
            sectors.append(sector)
            self.sealed += 1
            if self.progress is not None:
                self.progress(self.sealed, self.to_seal)
        return replace(miner, sectors=tuple(sectors))

    def snapshot_power(self) -> None:
        """Lotus sets the power actor's this-epoch power to the genesis power (miners.go)."""
        power = PowerState.from_cbor(self.state_of(builtin.STORAGE_POWER_ACTOR_ADDR))
        raw, qa = power.current_total_power(self.policy)
        power = replace(power, this_epoch_raw_byte_power=raw, this_epoch_quality_adj_power=qa)
        actor = self.tree.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
        assert actor is not None
        self.tree.set_actor(
            builtin.STORAGE_POWER_ACTOR_ADDR, actor.with_head(put_cbor(self.store, power.to_cbor()))
        )


def build_state(
    template: GenesisTemplate,
    store: Blockstore,
    ticket: Ticket,
    progress: SealProgress | None = None,
    beacon_entry: BeaconEntry = GENESIS_BEACON_ENTRY,
) -> tuple[CID, tuple[PresealedMiner, ...]]:
    """The genesis state root for template, and its miners with their sealed sectors. The template's
    timestamp plays no part: only the block header carries it."""
    builder = _Builder(template, store, ticket, progress, beacon_entry)
    builder.singletons()
    builder.accounts()
    miners = [builder.miner_accounts(i, entry) for i, entry in enumerate(template.miners)]
    builder.reserve_miner_ids()
    # A fresh VM: its circulating supply (which pledges depend on) now sees the allocated balances.
    builder.refresh_vm()
    miners = [
        builder.create_miner(i, entry, miner)
        for i, (entry, miner) in enumerate(zip(template.miners, miners, strict=True))
    ]
    builder.snapshot_power()
    root = builder.tree.flush()
    total = sum(actor.balance for _, actor in builder.tree.actors())
    if total != TOTAL_FILECOIN:
        raise GenesisError(
            f"genesis balances add up to {total} attoFIL, not the total supply {TOTAL_FILECOIN}"
        )
    return root, tuple(miners)


def build_genesis(
    template: GenesisTemplate,
    store: Blockstore | None = None,
    *,
    progress: SealProgress | None = None,
    beacon_entry: BeaconEntry = GENESIS_BEACON_ENTRY,
) -> Genesis:
    """Build the genesis state and block for template (deterministically) into store; progress is
    called after each sector is sealed. beacon_entry is the block's round 0 (a drand chain's genesis
    entry for a network that runs its own beacon; Lotus's 32 zero bytes otherwise)."""
    if beacon_entry.round != 0 or len(beacon_entry.data) != 32:
        raise GenesisError("a genesis beacon entry is round 0 with 32 bytes of data")
    store = MemoryBlockstore() if store is None else store
    ticket = genesis_ticket(template.network_name)
    state_root, miners = build_state(template, store, ticket, progress, beacon_entry)
    empty = amt_v0_from_list(store, [])
    messages = put_cbor(store, MsgMeta(empty, empty).to_cbor())
    store.put(FILECOIN_GENESIS_CID, FILECOIN_GENESIS_BLOCK)
    header = BlockHeader(
        miner=builtin.SYSTEM_ACTOR_ADDR,
        ticket=ticket,
        election_proof=ElectionProof(0, b""),
        beacon_entries=(beacon_entry,),
        win_post_proof=(),
        parents=(FILECOIN_GENESIS_CID,),
        parent_weight=0,
        height=0,
        parent_state_root=state_root,
        parent_message_receipts=empty,
        messages=messages,
        bls_aggregate=None,
        timestamp=template.timestamp,
        block_sig=None,
        parent_base_fee=template.policy.initial_base_fee,
    )
    store.put(header.cid(), header.to_bytes())
    return Genesis(header, store, miners)


# -- the CAR -------------------------------------------------------------------------------------------


class _Buffer:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


def genesis_car_bytes(genesis: Genesis) -> bytes:
    out = _Buffer()
    write_car(out, [genesis.cid], genesis.blocks())
    return b"".join(out.parts)


def write_genesis_car(genesis: Genesis, path: Path) -> int:
    """Write the genesis CAR to path atomically; return its size in bytes."""
    data = genesis_car_bytes(genesis)
    write_atomic(Path(path), data)
    return len(data)


# -- loading -------------------------------------------------------------------------------------------

SINGLETONS: Final = (
    (builtin.SYSTEM_ACTOR_ADDR, builtin.SYSTEM_ACTOR_CODE),
    (builtin.INIT_ACTOR_ADDR, builtin.INIT_ACTOR_CODE),
    (builtin.REWARD_ACTOR_ADDR, builtin.REWARD_ACTOR_CODE),
    (builtin.CRON_ACTOR_ADDR, builtin.CRON_ACTOR_CODE),
    (builtin.STORAGE_POWER_ACTOR_ADDR, builtin.POWER_ACTOR_CODE),
    (builtin.STORAGE_MARKET_ACTOR_ADDR, builtin.MARKET_ACTOR_CODE),
    (builtin.BURNT_FUNDS_ACTOR_ADDR, builtin.ACCOUNT_ACTOR_CODE),
)


def check_genesis(store: Blockstore, header: BlockHeader) -> StateTree:
    """Check that header is a genesis block whose whole state is in store; return its state tree."""
    if header.height != 0 or header.miner != builtin.SYSTEM_ACTOR_ADDR or header.parent_weight != 0:
        raise GenesisError("not a genesis block: height, miner and parent weight must be 0, f00 and 0")
    try:
        meta = MsgMeta.from_cbor(get_cbor(store, header.messages))
        for root in (meta.bls_messages, meta.secpk_messages, header.parent_message_receipts):
            if amt_v0_to_list(store, root):
                raise GenesisError("a genesis block carries no messages and no receipts")
        for _ in walk_dag(store, [header.parent_state_root]):
            pass
        tree = StateTree.load(store, header.parent_state_root)
        total = sum(actor.balance for _, actor in tree.actors())
        heads = {}
        for address, code in SINGLETONS:
            found = tree.get_actor(address)
            if found is None or found.code != code:
                raise GenesisError(f"the genesis state has no {code} actor at {address}")
            heads[address] = found.head
        InitState.from_cbor(get_cbor(store, heads[builtin.INIT_ACTOR_ADDR]))
    except BlockNotFound as exc:
        raise GenesisError(f"the genesis is incomplete: {exc}") from None
    except (DecodeError, StateTreeError) as exc:
        raise GenesisError(f"the genesis state does not load: {exc}") from None
    if total != TOTAL_FILECOIN:
        raise GenesisError(f"genesis balances add up to {total} attoFIL, not the total supply")
    return tree


def load_genesis_car(store: Blockstore, stream: BinaryIO) -> BlockHeader:
    """Import a genesis CAR into store, check it (see check_genesis) and return the genesis header."""
    try:
        imported = import_car(store, stream)
        if len(imported.roots) != 1:
            raise GenesisError(f"a genesis CAR has one root, this one has {len(imported.roots)}")
        data = store.get(imported.roots[0])
        if data is None:
            raise GenesisError(f"the CAR does not hold its root block {imported.roots[0]}")
        header = BlockHeader.from_bytes(data)
    except DecodeError as exc:
        raise GenesisError(f"not a genesis CAR: {exc}") from None
    check_genesis(store, header)
    return header


def load_genesis_file(store: Blockstore, path: Path) -> BlockHeader:
    try:
        with Path(path).open("rb") as stream:
            return load_genesis_car(store, stream)
    except OSError as exc:
        raise GenesisError(f"{path}: {exc}") from None
