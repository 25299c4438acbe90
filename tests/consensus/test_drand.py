"""The drand beacon (chain/consensus/drand.py) against the League of Entropy mainnet, and our own signer.

The mainnet chain info is what `curl https://api.drand.sh/info` prints (Lotus carries the same in
build/drand.go); the rounds are published entries (`curl https://drand.cloudflare.com/public/<round>`)
as drand-verify and nois-contracts record them in their tests.
"""

import json

import pytest

from chain.consensus.beacon import InvalidBeaconEntry, beacon_entries_for_block, check_beacon_entries
from chain.consensus.drand import (
    CHAINED_SCHEME,
    DrandBeacon,
    DrandChainInfo,
    DrandKey,
    InvalidChainInfo,
    drand_randomness,
    max_round_for_epoch,
    round_message,
    signature_verifies,
    single_signer_group_hash,
)
from chain.encoding.errors import DecodeError
from chain.types.beacon import BeaconEntry

MAINNET_INFO_JSON = {
    "public_key": (
        "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31"
    ),
    "period": 30,
    "genesis_time": 1595431050,
    "hash": "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce",
    "groupHash": "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a",
    "schemeID": "pedersen-bls-chained",
    "metadata": {"beaconID": "default"},
}
MAINNET = DrandChainInfo.from_json(MAINNET_INFO_JSON)
# Filecoin mainnet's genesis and block delay (Lotus build/buildconstants).
FIL_GENESIS = 1598306400
FIL_BLOCK_DELAY = 30

ROUND_1 = bytes.fromhex(
    "8d61d9100567de44682506aea1a7a6fa6e5491cd27a0a0ed349ef6910ac5ac20ff7bc3e09d7c046566c9f7f3c6f3b101"
    "04990e7cb424998203d8f7de586fb7fa5f60045417a432684f85093b06ca91c769f0e7ca19268375e659c2a2352b4655"
)
SIGNATURES = {
    72784: (
        "a609e19a03c2fcc559e8dae14900aaefe517cb55c840f6e69bc8e4f66c8d18e8a609685d9917efbfb0c37f058c2de88f"
        "13d297c7e19e0ab24813079efe57a182554ff054c7638153f9b26a60e7111f71a0ff63d9571704905d3ca6df0b031747"
    ),
    72785: (
        "82f5d3d2de4db19d40a6980e8aa37842a0e55d1df06bd68bddc8d60002e8e959eb9cfa368b3c1b77d18f02a54fe047b8"
        "0f0989315f83b12a74fd8679c4f12aae86eaf6ab5690b34f1fddd50ee3cc6f6cdf59e95526d5a5d82aaa84fa6f181e42"
    ),
    72786: (
        "85d64193239c6a2805b5953521c1e7c412d13f8b29df2dfc796b7dc8e1fd795b764362e49302956a350f9385f68b68d8"
        "085fda08c2bd0528984a413db52860b408c72d1210609de3a342259d4c08f86ee729a2dbeb140908270849fd7d0dec40"
    ),
    72787: (
        "8ceee95d523f54a752807f4705ce0f89e69911dd3dce330a337b9409905a881a2f879d48fce499bfeeb3b12e7f83ab7d"
        "09b42f31fa729af4c19adfe150075b2f3fe99c8fbcd7b0b5f0bb91ac8ad8715bfe52e3fb12314fddb76d4e42461f6ea4"
    ),
    2183667: (
        "b0272269d87be8f146a0dc4f882b03add1e0f98ee7c55ee674107c231cfa7d2e40d9c88dd6e72f2f52d1abe14766b2c4"
        "0dd392eec82d678a4c925c6937717246e8ae96d54d8ea70f85f8282cf14c56e5b547b7ee82df4ff61f3523a0eefcdf41"
    ),
    2183668: (
        "b06969214b8a7c8d705c4c5e00262626d95e30f8583dc21670508d6d4751ae95ddf675e76feabe1ee5f4000dd21f09d0"
        "09bb2b57da6eedd10418e83c303c2d5845914175ffe13601574d039a7593c3521eaa98e43be927b4a00d423388501f05"
    ),
    2183669: (
        "990538b0f0ca3b934f53eb41d7a4ba24f3b3800abfc06275eb843df75a53257c2dbfb8f6618bb72874a79303429db13e"
        "038e6619c08726e8bbb3ae58ebb31e08d2aed921e4246fdef984285eb679c6b443f24bd04f78659bd4230e654db4200d"
    ),
    2183670: (
        "a63dcbd669534b049a86198ee98f1b68c24aac50de411d11f2a8a98414f9312cd04027810417d0fa60461c0533d60463"
        "0ada568ef83af93ce05c1620c8bee1491092c11e5c7d9bb679b5b8de61bbb48e092164366ae6f799c082ddab691d1d78"
    ),
    2183671: (
        "b449f94098616029baea233fa8b64851cf9de2b230a7c5a2181c3abdc9e92806ae9020a5d9dcdbb707b6f1754480954b"
        "00a80b594cb35b51944167d2b20cc3b3cac6da7023c6a6bf867c6c3844768794edcaae292394316603797d669f62691a"
    ),
}


def mainnet_entry(round_: int) -> BeaconEntry:
    return BeaconEntry(round_, bytes.fromhex(SIGNATURES[round_]))


def mainnet_beacon() -> DrandBeacon:
    return DrandBeacon(MAINNET, genesis_time=FIL_GENESIS, block_delay=FIL_BLOCK_DELAY)


# -- the League of Entropy mainnet ---------------------------------------------------------------------


def test_mainnet_chain_info_hashes_to_its_published_hash() -> None:
    assert MAINNET.hash.hex() == MAINNET_INFO_JSON["hash"]
    assert MAINNET.scheme_id == CHAINED_SCHEME
    written = json.loads(json.dumps(MAINNET.to_json()))
    assert written == MAINNET_INFO_JSON
    # Lotus's build/drand.go ChainInfoJSON has no scheme or metadata: the defaults are mainnet's.
    lotus_keys = ("public_key", "period", "genesis_time", "hash", "groupHash")
    lotus_form = {k: MAINNET_INFO_JSON[k] for k in lotus_keys}
    assert DrandChainInfo.from_json(lotus_form) == MAINNET


def test_chain_info_that_does_not_hash_to_its_name_is_refused() -> None:
    forged = dict(MAINNET_INFO_JSON, period=3)
    with pytest.raises(DecodeError, match=r"hash.*not the hash of this chain info"):
        DrandChainInfo.from_json(forged)
    with pytest.raises(DecodeError, match=r"public_key.*not hex"):
        DrandChainInfo.from_json(dict(MAINNET_INFO_JSON, public_key="zz"))
    with pytest.raises(DecodeError, match="period"):
        DrandChainInfo.from_json(dict(MAINNET_INFO_JSON, period=0, hash=None))


def test_mainnet_round_1_chains_to_the_group_hash() -> None:
    beacon = mainnet_beacon()
    assert MAINNET.genesis_entry == BeaconEntry(0, MAINNET.group_hash)
    beacon.verify_entry(BeaconEntry(1, ROUND_1), MAINNET.genesis_entry)


def test_mainnet_consecutive_rounds_verify_from_a_trusted_entry() -> None:
    beacon = mainnet_beacon()
    beacon.verify_chain([mainnet_entry(r) for r in (72785, 72786, 72787)], mainnet_entry(72784))
    beacon.verify_chain([mainnet_entry(r) for r in range(2183668, 2183672)], mainnet_entry(2183667))
    # drand's randomness is sha256 of the signature (drand-verify's recorded value for 72785).
    assert drand_randomness(mainnet_entry(72785).data).hex() == (
        "8b676484b5fb1f37f9ec5c413d7d29883504e5b669f604a1ce68b3388e9ae3d9"
    )


def test_mainnet_entries_that_are_not_the_chain_are_rejected() -> None:
    beacon = mainnet_beacon()
    previous, entry = mainnet_entry(72785), mainnet_entry(72786)
    # another round's signature in its place
    with pytest.raises(InvalidBeaconEntry, match="round 72786: the signature does not verify"):
        beacon.verify_entry(BeaconEntry(72786, mainnet_entry(72787).data), previous)
    # a signature moved to another round (labelled 72787, after a 72786 that is the real one)
    with pytest.raises(InvalidBeaconEntry, match="round 72787: the signature does not verify"):
        beacon.verify_entry(BeaconEntry(72787, entry.data), entry)
    # a round skipped
    with pytest.raises(InvalidBeaconEntry, match="round 72787 does not follow round 72785"):
        beacon.verify_entry(mainnet_entry(72787), previous)
    # bytes that are no signature at all
    with pytest.raises(InvalidBeaconEntry, match="96 bytes"):
        beacon.verify_entry(BeaconEntry(72786, entry.data[:48]), previous)
    with pytest.raises(InvalidBeaconEntry, match="not a G2 point"):
        beacon.verify_entry(BeaconEntry(72786, b"\x00" * 96), previous)
    # round 1 on top of a round 0 that is not the group hash (Lotus's 32 zero bytes)
    with pytest.raises(InvalidBeaconEntry, match="round 0 is not this beacon's genesis"):
        beacon.verify_entry(BeaconEntry(1, ROUND_1), BeaconEntry(0, bytes(32)))
    # the real entry still verifies after all that
    beacon.verify_entry(entry, previous)


def test_a_verified_round_is_remembered_and_a_different_signature_for_it_refused() -> None:
    beacon = mainnet_beacon()
    beacon.verify_entry(mainnet_entry(72785), mainnet_entry(72784))
    with pytest.raises(InvalidBeaconEntry, match="differs from the round's verified signature"):
        beacon.verify_entry(BeaconEntry(72785, mainnet_entry(72786).data), mainnet_entry(72784))


def test_round_for_epoch_is_lotus_max_beacon_round_v2() -> None:
    beacon = mainnet_beacon()
    # t = genesis + (epoch - 1) x 30; round = (t - drand genesis) // 30 + 1
    assert beacon.max_beacon_round_for_epoch(1) == (FIL_GENESIS - 1595431050) // 30 + 1 == 95846
    assert beacon.max_beacon_round_for_epoch(2) == 95847
    assert beacon.max_beacon_round_for_epoch(0) == 95845
    # before drand's genesis: round 1
    assert max_round_for_epoch(3, genesis_time=100, block_delay=30, drand_genesis_time=1000, period=30) == 1
    # a drand chain that starts with the Filecoin genesis: epoch e uses round e
    aligned = {"genesis_time": 500, "block_delay": 4, "drand_genesis_time": 500, "period": 4}
    rounds = [max_round_for_epoch(e, **aligned) for e in range(5)]
    assert rounds == [1, 1, 2, 3, 4]


def test_a_chained_beacon_needs_one_round_per_epoch() -> None:
    with pytest.raises(InvalidChainInfo, match=r"period \(30 s\) must be the block delay \(4 s\)"):
        DrandBeacon(MAINNET, genesis_time=FIL_GENESIS, block_delay=4)
    unchained = DrandChainInfo.from_json(dict(MAINNET_INFO_JSON, schemeID="bls-unchained-on-g1", hash=None))
    with pytest.raises(InvalidChainInfo, match="not supported"):
        DrandBeacon(unchained, genesis_time=FIL_GENESIS, block_delay=30)
    bad_key = DrandChainInfo.from_json(dict(MAINNET_INFO_JSON, public_key="11" * 48, hash=None))
    with pytest.raises(InvalidChainInfo, match="not a G1 point"):
        DrandBeacon(bad_key, genesis_time=FIL_GENESIS, block_delay=30)


# -- a chain we sign ---------------------------------------------------------------------------------------

KEY = DrandKey.derive(b"tests/consensus/test_drand")
GENESIS = 1_700_000_000
PERIOD = 4


def own_chain(rounds: int) -> tuple[DrandChainInfo, list[BeaconEntry]]:
    info = KEY.chain_info(genesis_time=GENESIS, period=PERIOD)
    entries = [info.genesis_entry]
    for _ in range(rounds):
        entries.append(KEY.next_entry(entries[-1]))
    return info, entries


def test_our_signer_makes_a_drand_chain() -> None:
    info, entries = own_chain(5)
    assert info.group_hash == single_signer_group_hash(KEY.public_key, PERIOD, GENESIS)
    assert len(info.public_key) == 48 and all(len(e.data) == 96 for e in entries[1:])
    beacon = DrandBeacon(info, genesis_time=GENESIS, block_delay=PERIOD)
    beacon.verify_chain(entries[1:], entries[0])
    # the same checks as drand's: sha256(previous || round) under the key, the basic scheme's DST
    from blspy import G1Element

    point = G1Element.from_bytes(info.public_key)
    assert signature_verifies(point, 3, entries[2].data, entries[3].data)
    assert round_message(3, entries[2].data) != round_message(4, entries[2].data)
    # another key's chain does not pass for this one
    other = DrandKey.derive(b"someone else")
    forged = other.next_entry(entries[0])
    with pytest.raises(InvalidBeaconEntry, match="round 1: the signature does not verify"):
        DrandBeacon(info, genesis_time=GENESIS, block_delay=PERIOD).verify_entry(forged, entries[0])


def test_secret_key_round_trips_and_never_prints() -> None:
    again = DrandKey.from_bytes(KEY.to_bytes())
    assert again.public_key == KEY.public_key
    assert KEY.to_bytes().hex() not in repr(KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        DrandKey.from_bytes(b"\x01" * 31)
    with pytest.raises(ValueError, match="not zero"):
        DrandKey.from_bytes(bytes(32))


def test_entries_for_a_block_chain_from_the_genesis_round() -> None:
    info, entries = own_chain(6)
    store = {e.round: e for e in entries[1:]}
    beacon = DrandBeacon(info, genesis_time=GENESIS, block_delay=PERIOD, entries=store)
    assert beacon.entry(0) == info.genesis_entry
    carried = beacon_entries_for_block(beacon, 3, 0)
    assert [e.round for e in carried] == [1, 2, 3]
    check_beacon_entries(beacon, carried, 3, 0, info.genesis_entry)
    check_beacon_entries(beacon, beacon_entries_for_block(beacon, 5, 3), 5, 3, carried[-1])
    with pytest.raises(LookupError, match=r"round 9 .* has not arrived"):
        beacon.entry(9)
    # a block that skips a round breaks the round list before any signature is checked
    with pytest.raises(InvalidBeaconEntry, match=r"rounds 1, 2, 3 .* got 1, 3"):
        check_beacon_entries(beacon, (carried[0], carried[2]), 3, 0, info.genesis_entry)


def test_time_of_round_and_current_round() -> None:
    info, _ = own_chain(0)
    assert info.time_of_round(1) == GENESIS
    assert info.time_of_round(3) == GENESIS + 2 * PERIOD
    assert info.current_round(GENESIS - 1) == 0
    assert info.current_round(GENESIS) == 1
    assert info.current_round(GENESIS + PERIOD - 0.5) == 1
    assert info.current_round(GENESIS + PERIOD) == 2
