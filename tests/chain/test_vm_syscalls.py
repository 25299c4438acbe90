"""The runtime's syscalls and lifecycle calls on a real state: signatures, commitments, vanilla proofs,
consensus faults, randomness, actor creation and deletion, circulating supply."""

import hashlib
from dataclasses import replace
from functools import cache

import pytest

from actors import builtin
from chain.crypto.keys import KeyType, PrivateKey
from chain.crypto.randomness import draw_randomness_from_digest
from chain.crypto.signature import Signature, SigType
from chain.encoding.bigint import encode_bigint
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1
from chain.state.tree import EMPTY_OBJECT_CID, Actor, StateTree
from chain.store.blockstore import put_cbor
from chain.types.address import Address
from chain.types.block import BlockHeader, PoStProof
from chain.types.message import TOTAL_FILECOIN
from chain.types.sector import (
    ConsensusFault,
    ConsensusFaultType,
    PieceInclusionVerifyInfo,
    PieceInfo,
    SealVerifyInfo,
    SectorID,
    SectorInfo,
    WindowPoStVerifyInfo,
)
from chain.vm import syscalls
from chain.vm.circulating import circulating_supply
from chain.vm.exitcode import ActorError, ExitCode
from chain.vm.gas import PRICES, GasTracker
from chain.vm.invocation import Environment, Invocation, MessageContext
from chain.vm.syscalls import LookbackState
from chain.vm.vm import NETWORK_VERSION
from proofs import commp, pip, post
from proofs.registered import RegisteredPoStProof, make_prover_id
from proofs.seal import SealedSector, prove_commit, seal
from tests.chain.chain_helpers import signed_header
from tests.chain.vm_helpers import FIL, PROBE_CODE, World, make_world
from tests.proofs.sectors import fr32_sector

SEAL_2KIB = 5
WINDOW_2KIB = RegisteredPoStProof.STACKED_DRG_WINDOW_2KIB_V1_1
MINER_ID = 1000
TICKET = bytes(range(32))
SEED = hashlib.sha256(b"seed").digest()


@cache
def sealed(number: int) -> SealedSector:
    return seal(SEAL_2KIB, fr32_sector(bytes([number])), make_prover_id(MINER_ID), number, TICKET)


def runtime(
    world: World,
    receiver: Address,
    caller: Address | None = None,
    epoch: int = 100,
    lookback: LookbackState | None = None,
) -> Invocation:
    """An invocation at epoch; consensus faults read workers through `lookback` (None: no chain)."""
    env = Environment(
        tree=world.tree,
        epoch=epoch,
        network_version=NETWORK_VERSION,
        policy=world.policy,
        prices=PRICES,
        invoker=world.invoker,
        randomness=world.randomness,
        circulating_supply=circulating_supply(world.tree),
        account_code=builtin.ACCOUNT_ACTOR_CODE,
        lookback_state=lookback,
    )
    ctx = MessageContext(env, GasTracker(10**12), world.ids[0], 0)
    actor = world.tree.get_actor(receiver)
    code = actor.code if actor is not None else PROBE_CODE
    return Invocation(ctx, caller or world.ids[0], receiver, code, 0, 2, 0)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


# -- signatures and hashing ------------------------------------------------------------------------------


def test_verify_signature_resolves_account_ids(world: World) -> None:
    rt = runtime(world, world.ids[1])
    data = b"to be signed"
    good = world.keys[1].sign(data)
    assert rt.verify_signature(good, world.ids[1], data)
    assert rt.verify_signature(good, world.addresses[1], data)
    assert not rt.verify_signature(world.keys[2].sign(data), world.ids[1], data)
    assert not rt.verify_signature(Signature(SigType.SECP256K1, b"\x00" * 65), world.ids[1], data)
    assert rt.ctx.gas.used == 4 * PRICES.verify_signature_secp256k1
    probe = world.add_probe()
    with pytest.raises(ActorError) as err:
        rt.verify_signature(good, probe, data)
    assert err.value.exit_code == ExitCode.ErrIllegalArgument
    bls = PrivateKey.derive(KeyType.BLS, b"bls signer")
    assert rt.verify_signature(bls.sign(data), Address.of_key(bls), data)


def test_hash_and_charging_store(world: World) -> None:
    rt = runtime(world, world.ids[0])
    assert rt.hash_blake2b(b"x") == hashlib.blake2b(b"x", digest_size=32).digest()
    assert rt.ctx.gas.used == PRICES.hashing_base
    cid = CID.hash_of(b"\x80")
    rt.store.put(cid, b"\x80")
    assert rt.store.get(cid) == b"\x80" and rt.store.has(cid)
    assert rt.ctx.gas.used == PRICES.hashing_base + PRICES.on_ipld_put(1) + 2 * PRICES.on_ipld_get()
    with pytest.raises(ActorError):
        rt.store.delete(cid)


# -- commitments and proofs -----------------------------------------------------------------------------


def test_compute_unsealed_sector_cid(world: World) -> None:
    rt = runtime(world, world.ids[0])
    a = commp.commp_of_bytes(b"a" * 200)
    b = commp.commp_of_bytes(b"b" * 100)
    pieces = [
        PieceInfo(a.padded_size, piece_cid_v1(a.commitment)),
        PieceInfo(b.padded_size, piece_cid_v1(b.commitment)),
    ]
    expected = commp.comm_d(
        [commp.PieceInfo(a.padded_size, a.commitment), commp.PieceInfo(b.padded_size, b.commitment)], 2048
    )
    assert rt.compute_unsealed_sector_cid(SEAL_2KIB, pieces) == piece_cid_v1(expected)
    assert rt.compute_unsealed_sector_cid(SEAL_2KIB, []) == piece_cid_v1(commp.zero_piece_commitment(2048))
    for proof, bad in (
        (99, pieces),
        (SEAL_2KIB, [PieceInfo(4096, pieces[0].piece_cid)]),
        (SEAL_2KIB, [PieceInfo(256, CID.hash_of(b"x"))]),
    ):
        with pytest.raises(ActorError) as err:
            rt.compute_unsealed_sector_cid(proof, bad)
        assert err.value.exit_code == ExitCode.ErrIllegalArgument


def seal_info(sector: SealedSector, proof: bytes, **changes: object) -> SealVerifyInfo:
    info = SealVerifyInfo(
        seal_proof=SEAL_2KIB,
        sector_id=SectorID(MINER_ID, sector.sector_number),
        deal_ids=(),
        randomness=TICKET,
        interactive_randomness=SEED,
        proof=proof,
        sealed_cid=syscalls.sealed_cid(sector.comm_r),
        unsealed_cid=piece_cid_v1(sector.comm_d),
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def test_verify_seal(world: World) -> None:
    rt = runtime(world, world.ids[0])
    sector = sealed(7)
    proof = prove_commit(sector, SEED).to_bytes()
    assert rt.verify_seal(seal_info(sector, proof))
    assert rt.ctx.gas.used == PRICES.verify_seal_base
    assert not rt.verify_seal(seal_info(sector, proof, sector_id=SectorID(MINER_ID + 1, 7)))
    assert not rt.verify_seal(seal_info(sector, proof, interactive_randomness=bytes(32)))
    assert not rt.verify_seal(seal_info(sector, b"garbage"))
    assert not rt.verify_seal(seal_info(sector, proof, sealed_cid=piece_cid_v1(sector.comm_r)))
    assert not rt.verify_seal(seal_info(sector, proof, seal_proof=99))


def test_verify_window_post(world: World) -> None:
    rt = runtime(world, world.ids[0])
    sectors = [sealed(3), sealed(4)]
    randomness = hashlib.sha256(b"post").digest()
    proving = [
        post.ProvingSector(s.sector_number, s.comm_r, s.comm_c, s.comm_r_last, s.replica) for s in sectors
    ]
    proof = post.generate_window_post(WINDOW_2KIB, randomness, proving).to_bytes()
    challenged = tuple(SectorInfo(SEAL_2KIB, s.sector_number, syscalls.sealed_cid(s.comm_r)) for s in sectors)
    info = WindowPoStVerifyInfo(randomness, (PoStProof(WINDOW_2KIB, proof),), challenged, MINER_ID)
    assert rt.verify_post(info)
    assert rt.ctx.gas.used == PRICES.on_verify_post(2)
    assert not rt.verify_post(replace(info, randomness=bytes(32)))
    assert not rt.verify_post(replace(info, proofs=info.proofs * 2))
    assert not rt.verify_post(replace(info, challenged_sectors=challenged[:1]))
    assert not rt.verify_post(replace(info, proofs=(PoStProof(WINDOW_2KIB, b"junk"),)))


def test_verify_piece_inclusion(world: World) -> None:
    rt = runtime(world, world.ids[0])
    pieces = [commp.commp_of_bytes(bytes([i]) * 300) for i in range(3)]
    infos = [commp.PieceInfo(p.padded_size, p.commitment) for p in pieces]
    comm_d = piece_cid_v1(commp.comm_d(infos, 2048))
    proof = pip.prove_piece_inclusion(infos, 2048, 1).to_bytes()
    piece = PieceInfo(pieces[1].padded_size, piece_cid_v1(pieces[1].commitment))
    info = PieceInclusionVerifyInfo(SEAL_2KIB, comm_d, piece, proof)
    assert rt.verify_piece_inclusion(info)
    other = PieceInfo(pieces[0].padded_size, piece_cid_v1(pieces[0].commitment))
    assert not rt.verify_piece_inclusion(replace(info, piece=other))
    assert not rt.verify_piece_inclusion(replace(info, proof=b"\x00" * 5))
    assert not rt.verify_piece_inclusion(replace(info, unsealed_cid=CID.hash_of(b"x")))


# -- consensus faults -----------------------------------------------------------------------------------


def install_miner(world: World, worker: Address, tree: StateTree | None = None) -> Address:
    """A miner actor as the state holds one: State field 0 = Info CID, MinerInfo field 1 = Worker."""
    store = world.store
    info = put_cbor(store, [worker.to_bytes(), worker.to_bytes(), []])
    head = put_cbor(store, [info, encode_bigint(0)])
    address = Address.new_id(MINER_ID)
    (world.tree if tree is None else tree).set_actor(address, Actor(builtin.MINER_ACTOR_CODE, head, 0, 0))
    return address


def header(
    miner: Address, height: int, parents: tuple[CID, ...], key: PrivateKey | None, stamp: int = 0
) -> BlockHeader:
    return signed_header(miner, height, parents, key, timestamp=stamp)


P1 = (CID.hash_of(b"parent 1"),)
P2 = (CID.hash_of(b"parent 2"),)


def fault(
    rt: Invocation, a: BlockHeader, b: BlockHeader, extra: BlockHeader | None = None
) -> ConsensusFault | None:
    return rt.verify_consensus_fault(a.to_bytes(), b.to_bytes(), b"" if extra is None else extra.to_bytes())


def test_consensus_faults(world: World) -> None:
    miner = install_miner(world, world.ids[0])
    key = world.keys[0]
    rt = runtime(world, miner, epoch=100, lookback=lambda _: world.tree)
    a = header(miner, 90, P1, key, stamp=1)
    b = header(miner, 90, P2, key, stamp=2)
    assert fault(rt, a, b) == ConsensusFault(miner, 90, ConsensusFaultType.DoubleForkMining)
    assert rt.ctx.gas.used == PRICES.verify_consensus_fault
    later = header(miner, 91, P1, key)
    assert fault(rt, a, later) == ConsensusFault(miner, 91, ConsensusFaultType.TimeOffsetMining)
    sibling = header(miner, 90, P1, key, stamp=3)
    grandchild = header(miner, 92, (sibling.cid(),), key)
    assert fault(rt, a, grandchild, sibling) == ConsensusFault(miner, 92, ConsensusFaultType.ParentGrinding)
    # B's parents include A: no grinding.
    honest = header(miner, 92, (sibling.cid(), a.cid()), key)
    assert fault(rt, a, honest, sibling) is None


def test_no_consensus_fault(world: World) -> None:
    miner = install_miner(world, world.ids[0])
    key, other_key = world.keys[0], world.keys[1]
    rt = runtime(world, miner, epoch=100, lookback=lambda _: world.tree)
    a = header(miner, 90, P1, key, stamp=1)
    assert fault(rt, a, a) is None  # the same block
    assert fault(rt, a, header(Address.new_id(77), 90, P2, key)) is None  # different miners
    assert fault(rt, header(miner, 91, P2, key), a) is None  # first above second
    assert fault(rt, a, header(miner, 95, P2, key)) is None  # different parents and heights: no fault
    assert fault(rt, a, header(miner, 90, P2, other_key)) is None  # not signed by the worker
    assert fault(rt, a, header(miner, 90, P2, None)) is None  # not signed at all
    old_rt = runtime(world, miner, epoch=90 + world.policy.chain_finality + 1, lookback=lambda _: world.tree)
    assert fault(old_rt, a, header(miner, 90, P2, key)) is None  # older than finality
    assert rt.verify_consensus_fault(b"\x80", a.to_bytes(), b"") is None
    assert rt.verify_consensus_fault(a.to_bytes(), header(miner, 90, P2, key).to_bytes(), b"\x01") is None
    not_a_miner = runtime(world, world.ids[1], epoch=100, lookback=lambda _: world.tree)
    assert fault(not_a_miner, a, header(miner, 90, P2, key)) is None


def test_consensus_fault_reads_the_worker_at_the_blocks_height(world: World) -> None:
    """The worker key comes from the lookback state of each block's height, not the current state: a
    worker changed since still convicts with its old key, the new key's signatures over blocks of that
    height prove nothing, and without a chain (or a lookback state) nothing is proven."""
    miner = install_miner(world, world.ids[0])
    old_key, new_key = world.keys[0], world.keys[1]
    earlier = StateTree.load(world.store, world.tree.flush())  # the worker is ids[0] here
    install_miner(world, world.ids[1])  # the worker is ids[1] now
    asked: list[int] = []

    def lookback(round_: int) -> StateTree:
        asked.append(round_)
        return earlier

    rt = runtime(world, miner, epoch=100, lookback=lookback)
    a, b = header(miner, 90, P1, old_key, stamp=1), header(miner, 90, P2, old_key, stamp=2)
    assert fault(rt, a, b) == ConsensusFault(miner, 90, ConsensusFaultType.DoubleForkMining)
    assert asked == [90]  # one lookup per height
    renewed = (header(miner, 90, P1, new_key, stamp=1), header(miner, 90, P2, new_key, stamp=2))
    assert fault(rt, *renewed) is None
    # What reading the current state would have said, both ways round:
    current = runtime(world, miner, epoch=100, lookback=lambda _: world.tree)
    assert fault(current, *renewed) is not None and fault(current, a, b) is None
    assert fault(runtime(world, miner, epoch=100), a, b) is None  # no chain

    def no_state(round_: int) -> StateTree:
        raise ValueError(f"no lookback for {round_}")

    assert fault(runtime(world, miner, epoch=100, lookback=no_state), a, b) is None


# -- randomness, lifecycle, validation ------------------------------------------------------------------


def test_randomness_draws_from_the_source(world: World) -> None:
    rt = runtime(world, world.ids[0], epoch=50)
    expected = draw_randomness_from_digest(world.randomness.chain_digest(40), 5, 40, b"entropy")
    assert rt.get_randomness_from_tickets(5, 40, b"entropy") == expected
    expected = draw_randomness_from_digest(world.randomness.beacon_digest(50), 4, 50, b"")
    assert rt.get_randomness_from_beacon(4, 50, b"") == expected
    for draw, epoch in ((rt.get_randomness_from_tickets, 51), (rt.get_randomness_from_beacon, -1)):
        with pytest.raises(ActorError) as err:
            draw(1, epoch, b"")
        assert err.value.exit_code == ExitCode.ErrIllegalArgument


def test_create_actor_rules(world: World) -> None:
    init_rt = runtime(world, builtin.INIT_ACTOR_ADDR)
    new = Address.new_id(5000)
    init_rt.create_actor(builtin.MULTISIG_ACTOR_CODE, new)
    assert world.tree.get_actor(new) == Actor(builtin.MULTISIG_ACTOR_CODE, EMPTY_OBJECT_CID, 0, 0)
    assert init_rt.ctx.gas.used == PRICES.on_create_actor()
    cases = [
        (
            runtime(world, world.ids[0]),
            builtin.MULTISIG_ACTOR_CODE,
            Address.new_id(5001),
            ExitCode.ErrForbidden,
        ),
        (init_rt, builtin.MULTISIG_ACTOR_CODE, new, ExitCode.ErrForbidden),
        (init_rt, builtin.POWER_ACTOR_CODE, Address.new_id(5002), ExitCode.ErrIllegalArgument),
        (init_rt, CID.hash_of(b"unknown code"), Address.new_id(5003), ExitCode.ErrIllegalArgument),
        (init_rt, builtin.MULTISIG_ACTOR_CODE, Address.new_actor(b"x"), ExitCode.ErrIllegalArgument),
    ]
    for rt, code, address, exit_code in cases:
        with pytest.raises(ActorError) as err:
            rt.create_actor(code, address)
        assert err.value.exit_code == exit_code


def test_delete_actor_pays_the_beneficiary(world: World) -> None:
    doomed = world.add_probe(balance=3 * FIL)
    target_before = world.balance(world.ids[2])
    rt = runtime(world, doomed)
    for beneficiary in (doomed, Address.new_id(9999)):
        with pytest.raises(ActorError) as err:
            rt.delete_actor(beneficiary)
        assert err.value.exit_code == ExitCode.ErrIllegalArgument
    rt.delete_actor(world.addresses[2])
    assert world.tree.get_actor(doomed) is None
    assert world.balance(world.ids[2]) == target_before + 3 * FIL
    assert rt.ctx.gas.used == 3 * PRICES.on_delete_actor()  # a refund, charged on each attempt
    with pytest.raises(ActorError) as err:
        rt.current_balance()
    assert err.value.exit_code == ExitCode.ErrIllegalState


def test_caller_validation(world: World) -> None:
    rt = runtime(world, world.ids[1], caller=world.ids[0])
    rt.validate_immediate_caller_type(builtin.ACCOUNT_ACTOR_CODE)
    with pytest.raises(ActorError) as err:
        rt.validate_immediate_caller_accept_any()
    assert err.value.exit_code == ExitCode.ErrAssertionFailed
    rt = runtime(world, world.ids[1], caller=world.ids[0])
    with pytest.raises(ActorError) as err:
        rt.validate_immediate_caller_type(builtin.MINER_ACTOR_CODE)
    assert err.value.exit_code == ExitCode.SysErrForbidden
    rt = runtime(world, world.ids[1], caller=world.ids[0])
    with pytest.raises(ActorError) as err:
        rt.validate_immediate_caller_is(builtin.SYSTEM_ACTOR_ADDR)
    assert err.value.exit_code == ExitCode.SysErrForbidden


def test_circulating_supply() -> None:
    world = make_world(accounts=1)
    tree = world.tree
    assert circulating_supply(tree) == TOTAL_FILECOIN  # nothing held back yet
    for address, balance in ((builtin.REWARD_ACTOR_ADDR, 7 * FIL), (builtin.BURNT_FUNDS_ACTOR_ADDR, 2 * FIL)):
        actor = tree.get_actor(address)
        assert actor is not None
        tree.set_actor(address, actor.with_balance(balance))
    # A power state with TotalPledgeCollateral (field 4) and a market state with locked totals (8-10).
    power_head = put_cbor(world.store, [b"", b"", b"", b"", encode_bigint(3 * FIL), b""])
    tree.set_actor(builtin.STORAGE_POWER_ACTOR_ADDR, Actor(builtin.POWER_ACTOR_CODE, power_head, 0, 0))
    market_fields: list[object] = [CID.hash_of(b"x")] * 8 + [
        encode_bigint(FIL),
        encode_bigint(FIL),
        encode_bigint(FIL),
    ]
    market_head = put_cbor(world.store, market_fields)
    tree.set_actor(builtin.STORAGE_MARKET_ACTOR_ADDR, Actor(builtin.MARKET_ACTOR_CODE, market_head, 0, 0))
    assert circulating_supply(tree) == TOTAL_FILECOIN - 9 * FIL - 3 * FIL - 3 * FIL
    # A market state of another shape counts as nothing locked.
    tree.set_actor(
        builtin.STORAGE_MARKET_ACTOR_ADDR, Actor(builtin.MARKET_ACTOR_CODE, EMPTY_OBJECT_CID, 0, 0)
    )
    assert circulating_supply(tree) == TOTAL_FILECOIN - 9 * FIL - 3 * FIL
    vm = world.vm()
    assert vm.circulating_supply == TOTAL_FILECOIN - 12 * FIL


def test_circulating_supply_reads_the_real_power_and_market_states() -> None:
    from actors.market.state import MarketState
    from actors.power.state import PowerState

    world = make_world(accounts=1)
    store, tree = world.store, world.tree
    power = replace(PowerState.new(store), total_pledge_collateral=5 * FIL)
    market = replace(
        MarketState.new(store),
        total_client_locked_collateral=FIL,
        total_provider_locked_collateral=2 * FIL,
        total_client_storage_fee=3 * FIL,
    )
    tree.set_actor(
        builtin.STORAGE_POWER_ACTOR_ADDR,
        Actor(builtin.POWER_ACTOR_CODE, put_cbor(store, power.to_cbor()), 0, 0),
    )
    tree.set_actor(
        builtin.STORAGE_MARKET_ACTOR_ADDR,
        Actor(builtin.MARKET_ACTOR_CODE, put_cbor(store, market.to_cbor()), 0, 0),
    )
    assert circulating_supply(tree) == TOTAL_FILECOIN - 11 * FIL
