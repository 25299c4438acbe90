"""The FullNode of a repo, with the beacon its chain runs: what `filpy daemon` and `filpy devnet` open
before their services start.

    opened = open_repo_node(repo, genesis_path, wallet, policy=policy, config=config)
    opened.node            # FullNode over the repo's LevelDB (config.toml's [datastore] options)
    opened.beacon.service  # the drand BeaconService to run, or None for Lotus's mock beacon

The chain store is opened first (with the genesis on first start), then the beacon the genesis was made
for (node/beacon/setup.py: the mock, or the repo's drand chain, whose verified rounds live in the same
LevelDB under `/beacon/`), then the node's parts around both (node/fullnode.py assemble).
"""

from dataclasses import dataclass
from pathlib import Path

from chain.chainstore.metadata import LevelDBMetadata
from chain.params import Policy
from node.beacon.setup import (
    BEACON_DRAND,
    BeaconSetupError,
    NodeBeacon,
    beacon_kind_of,
    open_beacon,
    read_chain_info,
)
from node.beacon.store import NAMESPACE as BEACON_NAMESPACE
from node.config import Config
from node.fullnode import FullNode, assemble, open_chain_store
from node.repo import Repo
from node.wallet import Wallet


@dataclass(frozen=True, slots=True)
class RepoNode:
    node: FullNode
    beacon: NodeBeacon


def open_repo_node(
    repo: Repo,
    genesis: Path,
    wallet: Wallet,
    *,
    policy: Policy,
    config: Config,
    beacon_kind: str | None = None,
) -> RepoNode:
    """The repo's node (see the module docstring). beacon_kind: what the user asked for (`--beacon`),
    checked against the genesis; None takes the genesis's. NodeError, BeaconSetupError say what is
    wrong; the datastore is closed again when opening fails."""
    chain = open_chain_store(repo.datastore_path, genesis, options=config.datastore)
    try:
        header = chain.genesis()
        db = getattr(chain.blockstore, "db", None)
        assert db is not None  # a repo's chain store is on LevelDB
        kind = beacon_kind or beacon_kind_of(header)
        if kind == BEACON_DRAND:
            _check_period(repo, policy.block_delay_secs)
        opened = open_beacon(
            kind,
            genesis=header,
            block_delay=policy.block_delay_secs,
            info_path=repo.drand_path,
            keystore=repo.keystore,
            meta=LevelDBMetadata(db, namespace=BEACON_NAMESPACE),
        )
        node = assemble(chain, wallet, policy=policy, persistent=True, beacon=opened.beacon)
    except BaseException:
        chain.close()
        raise
    return RepoNode(node, opened)


def _check_period(repo: Repo, block_delay: int) -> None:
    """A chain running its own drand beacon has one round per epoch: the block delay is its period."""
    period = read_chain_info(repo.drand_path).period
    if period != block_delay:
        raise BeaconSetupError(
            f"this chain's drand beacon ({repo.drand_path}) has a round every {period} s, so its block "
            f"delay is {period} s, not {block_delay}: set `block_delay = {period}` under [chain] in "
            f"{repo.config_path}"
        )
