"""CAR interop with the JavaScript reference (@ipld/car, @ipld/dag-cbor) in both directions.

tests/interop/js holds the pinned npm packages (package-lock.json) and car_tool.mjs; node_modules is
installed with `npm ci` on first use.
"""

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chain.encoding import dagcbor
from chain.encoding.cid import CID, DAG_CBOR, RAW
from chain.encoding.multihash import IDENTITY, SHA2_256, Multihash
from chain.store.blockstore import LevelDBBlockstore, MemoryBlockstore, put_cbor
from chain.store.car import export_car, import_car, links_of, read_car
from tests.interop.js_env import JS_DIR, node_with_packages

TOOL = JS_DIR / "car_tool.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_packages("the @ipld/car interop tests")


def _run(node: str, *args: str) -> Any:
    done = subprocess.run([node, str(TOOL), *args], cwd=JS_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"car_tool.mjs {' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def _sample_dag(store: MemoryBlockstore) -> CID:
    def raw(data: bytes) -> CID:
        cid = CID.hash_of(data, codec=RAW)
        store.put(cid, data)
        return cid

    leaves = [raw(bytes([i]) * (i * 37 + 1)) for i in range(8)]
    sha_data = dagcbor.encode({"sha": True, "leaf": leaves[0]})
    sha_node = CID.hash_of(sha_data, mh_code=SHA2_256)
    store.put(sha_node, sha_data)
    inline = CID.v1(RAW, Multihash.digest_of(IDENTITY, b"inline"))
    extremes = put_cbor(
        store,
        {
            "u64max": (1 << 64) - 1,
            "neg64min": -(1 << 64),
            "i64": [(1 << 63) - 1, -(1 << 63)],
            # No integral float below 2^53: JavaScript reads 2.0 as the integer 2 and re-encodes it so.
            "floats": [1.5, -0.1, 1e-300, 2.5e300],
            "text": "héllo ✓ \u0000",
            "bytes": b"\x00\xff" * 40,
            "nil": None,
            "bools": [True, False],
            "nested": {"a": {"b": {"c": [[[leaves[1]]]]}}},
        },
    )
    mids = [put_cbor(store, {"i": i, "leaves": leaves[i : i + 3]}) for i in range(0, 8, 2)]
    return put_cbor(store, {"mids": mids, "extremes": extremes, "sha": sha_node, "inline": inline, "h": 7})


def test_ipld_car_reads_our_export(node: str, tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = _sample_dag(store)
    path = tmp_path / "ours.car"
    with path.open("wb") as out:
        written = export_car(store, [root], out)
    _, sections = read_car(io.BytesIO(path.read_bytes()))

    seen = _run(node, "read", str(path))
    assert seen["version"] == 1
    assert seen["roots"] == [str(root)]
    assert [b["cid"] for b in seen["blocks"]] == [str(cid) for cid, _ in sections]
    assert len(seen["blocks"]) == written
    for entry, (cid, data) in zip(seen["blocks"], sections, strict=True):
        assert entry["size"] == len(data)
        assert entry["codec"] == cid.codec
        assert entry["hash"] == cid.multihash.code
        assert entry["links"] == [str(link) for link in links_of(cid, data)]
        if cid.codec == DAG_CBOR:
            assert entry["canonical"] is True, f"@ipld/dag-cbor re-encodes {cid} differently"


def test_we_import_what_ipld_car_wrote(node: str, tmp_path: Path) -> None:
    path = tmp_path / "theirs.car"
    wrote = _run(node, "write", str(path))
    with LevelDBBlockstore(tmp_path / "db") as store:
        with path.open("rb") as stream:
            result = import_car(store, stream)
        assert [str(root) for root in result.roots] == wrote["roots"]
        assert result.blocks == len(wrote["blocks"])
        for entry in wrote["blocks"]:
            cid = CID.parse(entry["cid"])
            data = store.get(cid)
            assert data is not None and data.hex() == entry["hex"]
            assert [str(link) for link in links_of(cid, data)] == entry["links"]
            if cid.codec == DAG_CBOR:
                # Our strict decoder accepts their encoding and re-encodes it to the same bytes.
                assert dagcbor.encode(dagcbor.decode(data)) == data

        # Their writer put the blocks in depth-first link order, so our export is byte-identical.
        again = io.BytesIO()
        export_car(store, result.roots, again)
    assert again.getvalue() == path.read_bytes()
