"""UnixFS interop with the JavaScript reference (ipfs-unixfs-importer/-exporter, @ipld/dag-pb, @ipld/car).

Root CIDs must be byte-identical to ipfs-unixfs-importer's with `ipfs add --cid-version=1`'s options
(raw leaves, CIDv1, 256 KiB fixed chunks, balanced layout of 174 links); our CAR must be readable by
@ipld/car and exportable by ipfs-unixfs-exporter back to the same bytes; their CAR (in the importer's
emission order) must export through our verifying walk; the piece CID is `filpy commp`'s of the CAR.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chain.encoding import dagpb
from chain.encoding.cid import CID, DAG_PB
from chain.store.blockstore import MemoryBlockstore
from chain.store.car import read_car
from node.markets.traversal import export_file
from node.markets.unixfs import CHUNK_SIZE, MAX_LINKS, import_to_car
from tests.interop.js_env import JS_DIR
from tests.interop.test_car_js import node as node

TOOL = JS_DIR / "unixfs_tool.mjs"
SIZES = {
    "empty": 0,
    "one-byte": 1,
    "one-chunk": CHUNK_SIZE,
    "chunk-plus-one": CHUNK_SIZE + 1,
    "one-mib": 1 << 20,
    "two-levels": (MAX_LINKS + 2) * CHUNK_SIZE + 12_345,
}


def _run(node: str, *args: str) -> Any:
    done = subprocess.run([node, str(TOOL), *args], cwd=JS_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"unixfs_tool.mjs {' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", list(SIZES))
def test_same_root_as_ipfs_unixfs_importer_and_their_exporter_reads_our_car(
    node: str,
    tmp_path: Path,
    name: str,
) -> None:
    data = os.urandom(SIZES[name])
    path = tmp_path / name
    path.write_bytes(data)
    ours = import_to_car(path, tmp_path / "ours.car")
    theirs = _run(node, "import", str(path), str(tmp_path / "theirs.car"))
    assert theirs["root"] == str(ours.root)
    # Both DAGs hold the same blocks; ours writes each once in DFS order, theirs in emission order.
    _, sections = read_car((tmp_path / "ours.car").open("rb"))
    assert {str(cid) for cid, _ in sections} == {b["cid"] for b in theirs["blocks"]}

    exported = _run(node, "export", str(tmp_path / "ours.car"), str(tmp_path / "js-out"))
    assert exported["root"] == str(ours.root) and exported["size"] == len(data)
    assert exported["type"] in ("file", "raw")
    assert (tmp_path / "js-out").read_bytes() == data

    # Their CAR (children before parents) exports through our verifying walk from a block store.
    store = MemoryBlockstore()
    roots, blocks = read_car((tmp_path / "theirs.car").open("rb"))
    for cid, block in blocks:
        store.put(cid, block)
    with (tmp_path / "py-out").open("w+b") as out:
        export_file(store.get, roots[0], out)
    assert (tmp_path / "py-out").read_bytes() == data

    # The piece is what `filpy commp` says of our CAR.
    done = subprocess.run(
        [sys.executable, "-m", "cli", "commp", "--no-progress", str(tmp_path / "ours.car")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert str(ours.piece_cid) in done.stdout and str(ours.piece_size) in done.stdout


def test_dag_pb_nodes_are_canonical_for_at_ipld_dag_pb(node: str, tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(os.urandom(3 * CHUNK_SIZE))
    import_to_car(path, tmp_path / "file.car")
    _, sections = read_car((tmp_path / "file.car").open("rb"))
    inner = [(cid, block) for cid, block in sections if cid.codec == DAG_PB]
    assert inner
    for _cid, block in inner:
        seen = _run(node, "dagpb", block.hex())
        assert seen["canonical"] is True
        ours = dagpb.decode(block)
        assert seen["data"] == (ours.data or b"").hex()
        assert [(link["hash"], link["name"], link["tsize"]) for link in seen["links"]] == [
            (str(link.hash), link.name, link.tsize) for link in ours.links
        ]
    assert isinstance(inner[0][0], CID)
