"""`filpy genesis`: make a genesis CAR from a template (`new`), print the example template (`example`),
and describe a genesis CAR (`show`). The work is in node/genesis.py; docs/genesis.md has the format.

Each subcommand imports the chain, actors and sealing code it needs when it runs, so that
`filpy genesis --help` starts as fast as `filpy --help` (cli/main.py).
"""

import argparse
import sys
from pathlib import Path
from typing import TextIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="genesis_command", required=True, metavar="SUBCOMMAND")
    new = sub.add_parser("new", help="build a genesis block and state from a template, as a CAR")
    new.add_argument("template", type=Path, help="genesis template (JSON, see docs/genesis.md)")
    new.add_argument("out", type=Path, help="where to write the genesis CAR")
    new.add_argument(
        "--sectors",
        type=Path,
        metavar="DIR",
        help="write the miners' sealed sectors, PoSt commitments and owner/worker keys here",
    )
    new.set_defaults(handler=run_new)
    example = sub.add_parser("example", help="print the example template (one pre-sealed 2 KiB miner)")
    example.set_defaults(handler=run_example)
    show = sub.add_parser("show", help="check a genesis CAR and describe it")
    show.add_argument("car", type=Path, help="genesis CAR")
    show.set_defaults(handler=run_show)


def _fail(message: str) -> int:
    sys.stderr.write(f"filpy genesis: {message}\n")
    return 1


def run_new(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from node.genesis import GenesisError, build_genesis, write_genesis_car
    from node.genesis_template import MAX_TEMPLATE_BYTES, GenesisTemplate, TemplateError
    from node.preseal import write_presealed

    out = out or sys.stdout
    path: Path = args.template
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            return _fail(f"{path}: more than {MAX_TEMPLATE_BYTES} bytes")
        template = GenesisTemplate.from_json(path.read_bytes())
    except OSError as exc:
        return _fail(f"{path}: {exc}")
    except TemplateError as exc:
        return _fail(f"{path}: {exc}")
    try:
        genesis = build_genesis(template)
        size = write_genesis_car(genesis, args.out)
        if args.sectors is not None:
            for miner in genesis.miners:
                write_presealed(args.sectors, miner, template.policy.address_network)
    except GenesisError as exc:
        return _fail(f"{path}: {exc}")
    except OSError as exc:
        return _fail(str(exc))
    network = template.policy.address_network
    out.write(f"genesis CID:  {genesis.cid}\n")
    out.write(f"state root:  {genesis.header.parent_state_root}\n")
    out.write(f"network:  {template.network_name} ({template.profile} profile)\n")
    out.write(f"written:  {args.out} ({size} bytes)\n")
    for miner in genesis.miners:
        out.write(
            f"miner {miner.id_address.to_string(network)}:  owner {miner.owner.to_string(network)}, "
            f"worker {miner.worker.to_string(network)}, {len(miner.sectors)} sectors\n"
        )
    if args.sectors is not None and genesis.miners:
        out.write(f"sectors and keys:  {args.sectors}\n")
    return 0


def run_example(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from node.genesis_template import example_template_json

    (out or sys.stdout).write(example_template_json())
    return 0


def run_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from actors import builtin
    from actors.power.state import ClaimsTable, PowerState
    from chain.state.init_state import InitState
    from chain.store.blockstore import MemoryBlockstore, get_cbor
    from chain.vm.exitcode import ActorError
    from node.genesis import GenesisError, check_genesis, load_genesis_file

    out = out or sys.stdout
    store = MemoryBlockstore()
    try:
        header = load_genesis_file(store, args.car)
        tree = check_genesis(store, header)
        init = tree.get_actor(builtin.INIT_ACTOR_ADDR)
        power = tree.get_actor(builtin.STORAGE_POWER_ACTOR_ADDR)
        assert init is not None and power is not None  # check_genesis found them
        network_name = InitState.from_cbor(get_cbor(store, init.head)).network_name
        power_state = PowerState.from_cbor(get_cbor(store, power.head))
        miners = []
        for address, actor in sorted(tree.actors(), key=lambda item: item[0].id):
            if actor.code == builtin.MINER_ACTOR_CODE:
                claim = ClaimsTable.load(store, power_state.claims).get(address)
                miners.append((address, 0 if claim is None else claim.raw_byte_power))
    except GenesisError as exc:
        return _fail(f"{args.car}: {exc}")
    except ActorError as exc:
        return _fail(f"{args.car}: the power actor's state does not load: {exc.message}")
    out.write(f"genesis CID:  {header.cid()}\n")
    out.write(f"network:  {network_name}\n")
    out.write(f"timestamp:  {header.timestamp}\n")
    out.write(f"state root:  {header.parent_state_root}\n")
    out.write(f"actors:  {sum(1 for _ in tree.actors())}\n")
    out.write(f"network raw power:  {power_state.total_bytes_committed} bytes\n")
    for address, raw_power in miners:
        out.write(f"miner {address}:  {raw_power} bytes raw power\n")
    return 0
