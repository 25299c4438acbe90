"""HTTP retrieval as plain clients see it (httpx, curl): the trustless gateway and the piece gateway."""

import io
import shutil
from pathlib import Path

import httpx
import pytest
import trio

from chain.encoding import dagpb
from chain.encoding.cid import CID
from chain.encoding.commcid import piece_cid_v1, v1_to_v2
from chain.encoding.multihash import SHA2_256
from chain.store.car import encode_header, read_car, write_car
from node.markets.piecestore import RetrievalAsk
from node.markets.retrieval_client import BadData, ProviderRefused, TransferInterrupted, retrieve_http
from node.markets.unixfs import CHUNK_SIZE, DataType, UnixFSData
from proofs.commp import commp_of_bytes
from tests.markets.conftest import Provider

CAR = "application/vnd.ipld.car"
UNKNOWN = "bafkreiedreox72c4gpsszc2olakmsl5wuo4um4uzeactrjv2xkuliuwype"


async def get(url: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, **kwargs)  # type: ignore[arg-type]


async def test_the_car_of_a_root_is_the_import_s_car(provider: Provider) -> None:
    root = provider.imported.root
    by_query = await get(f"{provider.base}/ipfs/{root}?format=car")
    assert by_query.status_code == 200
    assert by_query.content == provider.car.read_bytes()
    assert by_query.headers["content-type"] == f"{CAR}; version=1; order=dfs; dups=n"
    assert by_query.headers["content-disposition"] == f'attachment; filename="{root}.car"'
    assert by_query.headers["x-ipfs-path"] == f"/ipfs/{root}"
    assert "immutable" in by_query.headers["cache-control"] and by_query.headers["etag"]
    by_accept = await get(f"{provider.base}/ipfs/{root}", headers={"Accept": f"{CAR}; version=1"})
    assert by_accept.content == by_query.content
    with_dups = await get(f"{provider.base}/ipfs/{root}?format=car&car-dups=y")
    assert with_dups.headers["content-type"].endswith("dups=y")
    _, sections = read_car(io.BytesIO(with_dups.content))
    assert len(sections) == provider.imported.blocks + 1  # the zero chunk twice
    block = await get(f"{provider.base}/ipfs/{root}?format=car&dag-scope=block")
    _, only = read_car(io.BytesIO(block.content))
    assert [cid for cid, _ in only] == [root]
    raw = await get(f"{provider.base}/ipfs/{root}?format=raw")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/vnd.ipld.raw"
    assert CID.hash_of(raw.content, codec=root.codec, mh_code=root.multihash.code) == root


async def test_head_probe_and_refusals(provider: Provider) -> None:
    root = provider.imported.root
    async with httpx.AsyncClient() as client:
        head = await client.head(f"{provider.base}/ipfs/{root}?format=car")
        assert (
            head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith(CAR)
        )
        probe = await client.get(f"{provider.base}/ipfs/bafkqaaa?format=car")
        assert probe.status_code == 200 and probe.content == encode_header([CID.parse("bafkqaaa")])
        assert (await client.get(f"{provider.base}/ipfs/bafkqaaa?format=raw")).content == b""
        cases = [
            (f"/ipfs/{UNKNOWN}?format=car", {}, 404, "not stored here"),
            (f"/ipfs/{UNKNOWN}?format=car", {"Cache-Control": "only-if-cached"}, 412, "not stored"),
            ("/ipfs/not-a-cid?format=car", {}, 400, "invalid CID"),
            (f"/ipfs/{root}", {}, 400, "trustless gateway"),
            (f"/ipfs/{root}?format=tar", {}, 400, "not served here"),
            (f"/ipfs/{root}?format=car&dag-scope=most", {}, 400, "dag-scope"),
            (f"/ipfs/{root}?format=car&car-version=2", {}, 400, "version"),
            (f"/ipfs/{root}?format=car&entity-bytes=0:10", {}, 400, "entity-bytes"),
            (f"/ipfs/{root}/sub?format=car", {}, 400, "not a plain directory"),
            (f"/piece/{UNKNOWN}", {}, 400, "not a piece CID"),
            (f"/piece/{piece_cid_v1(bytes(32))}", {}, 404, "not stored here"),
        ]
        for path, headers, status, words in cases:
            answer = await client.get(provider.base + path, headers=headers)
            assert (answer.status_code, words in answer.text) == (status, True), (path, answer.text)
        posted = await client.post(f"{provider.base}/piece/{provider.piece.piece_cid}")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"


async def test_piece_bytes_hash_to_the_piece_cid_and_ranges_work(provider: Provider) -> None:
    url = f"{provider.base}/piece/{provider.piece.piece_cid}"
    size = provider.piece.unpadded_size
    car = provider.car.read_bytes()
    whole = await get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/piece"
    assert int(whole.headers["content-length"]) == size == len(whole.content)
    assert whole.content == car + bytes(size - len(car))
    assert piece_cid_v1(commp_of_bytes(whole.content).commitment) == provider.piece.piece_cid
    ranges = [
        ("bytes=0-99", 206, car[:100], f"bytes 0-99/{size}"),
        ("bytes=100-", 206, whole.content[100:], f"bytes 100-{size - 1}/{size}"),
        ("bytes=-10", 206, bytes(10), f"bytes {size - 10}-{size - 1}/{size}"),
        (f"bytes={size - 5}-{size + 100}", 206, bytes(5), f"bytes {size - 5}-{size - 1}/{size}"),
        ("bytes=0-1,5-6", 200, whole.content, None),
    ]
    for header, status, body, content_range in ranges:
        answer = await get(url, headers={"Range": header})
        assert answer.status_code == status and answer.content == body, header
        assert answer.headers.get("content-range") == content_range
    refused = await get(url, headers={"Range": f"bytes={size}-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{size}"
    cached = await get(url, headers={"If-None-Match": whole.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    async with httpx.AsyncClient() as client:
        head = await client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(size) and head.content == b""
    v2 = v1_to_v2(provider.piece.piece_cid, len(car))
    assert (await get(f"{provider.base}/piece/{v2}", headers={"Range": "bytes=0-9"})).content == car[:10]


async def test_curl_downloads_are_byte_identical(provider: Provider, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    root = provider.imported.root
    out = tmp_path / "curl.car"
    done = await trio.run_process(
        [curl, "-sSf", "-o", str(out), f"{provider.base}/ipfs/{root}?format=car"],
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == provider.car.read_bytes()
    piece = tmp_path / "curl.piece"
    done = await trio.run_process(
        [curl, "-sSf", "-o", str(piece), f"{provider.base}/piece/{provider.piece.piece_cid}"], check=False
    )
    assert done.returncode == 0
    assert piece_cid_v1(commp_of_bytes(piece.read_bytes()).commitment) == provider.piece.piece_cid


async def test_priced_data_is_refused_until_a_deal(provider: Provider, tmp_path: Path) -> None:
    provider.app._ask = RetrievalAsk(price_per_byte=2)
    for path in (f"/ipfs/{provider.imported.root}?format=car", f"/piece/{provider.piece.piece_cid}"):
        answer = await get(provider.base + path)
        assert answer.status_code == 402 and "make a retrieval deal" in answer.text
    with pytest.raises(ProviderRefused, match="402"):
        await retrieve_http(provider.base, provider.imported.root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


async def test_the_verifying_client_writes_the_file_or_the_car(provider: Provider, tmp_path: Path) -> None:
    root = provider.imported.root
    result = await retrieve_http(provider.base, root, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == provider.data and result.file_size == len(provider.data)
    await retrieve_http(provider.base, root, tmp_path / "out.car", car=True)
    assert (tmp_path / "out.car").read_bytes() == provider.car.read_bytes()
    with pytest.raises(ProviderRefused, match="404"):
        await retrieve_http(provider.base, CID.parse(UNKNOWN), tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


async def test_an_interrupted_transfer_is_detected(provider: Provider, tmp_path: Path) -> None:
    # The provider's CAR loses its tail: the gateway finds a block missing half-way and cuts the stream.
    raw = provider.car.read_bytes()
    provider.car.write_bytes(raw[: len(raw) - CHUNK_SIZE])
    with pytest.raises(TransferInterrupted, match="broke off"):
        await retrieve_http(provider.base, provider.imported.root, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    with pytest.raises(httpx.RemoteProtocolError):
        await get(f"{provider.base}/ipfs/{provider.imported.root}?format=car")


async def test_a_tampered_block_is_refused_by_the_client(provider: Provider, tmp_path: Path) -> None:
    raw = bytearray(provider.car.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside a leaf: same length, other bytes
    provider.car.write_bytes(bytes(raw))
    with pytest.raises(BadData, match="tampered"):
        await retrieve_http(provider.base, provider.imported.root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


async def test_a_path_walks_a_unixfs_directory(provider: Provider, tmp_path: Path) -> None:
    root = provider.imported.root
    directory = dagpb.encode(
        dagpb.PBNode(
            (dagpb.PBLink(root, "file.bin", provider.imported.car_size),),
            UnixFSData(DataType.Directory).encode(),
        )
    )
    dir_cid = CID.hash_of(directory, codec=dagpb.CODEC, mh_code=SHA2_256)
    _, sections = read_car(provider.car.open("rb"))
    with (tmp_path / "dir.car").open("wb") as out:
        write_car(out, [dir_cid], [(dir_cid, directory), *sections])
    provider.store.add_car(tmp_path / "dir.car")
    answer = await get(f"{provider.base}/ipfs/{dir_cid}/file.bin?format=car")
    assert answer.status_code == 200 and answer.headers["x-ipfs-roots"] == f"{dir_cid},{root}"
    roots, blocks = read_car(io.BytesIO(answer.content))
    assert roots == (dir_cid,) and blocks == [(dir_cid, directory), *sections]
    missing = await get(f"{provider.base}/ipfs/{dir_cid}/nope?format=car")
    assert missing.status_code == 404 and "'nope' is not in directory" in missing.text
