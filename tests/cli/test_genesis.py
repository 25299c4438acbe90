"""`filpy genesis new / example / show`: output, the sectors directory and errors."""

import json
from pathlib import Path

import pytest

from chain.crypto.keys import PrivateKey
from chain.types.address import Address
from cli import main as cli
from node.genesis import Genesis, genesis_car_bytes
from node.genesis_template import example_template_json
from node.preseal import PresealError, read_presealed
from proofs import post
from tests.node.genesis_example import build_example, example


@pytest.fixture(scope="module")
def built() -> Genesis:
    return build_example()


def test_cli_new_show_and_sectors(built: Genesis, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "template.json"
    template.write_text(example_template_json())
    out, sectors = tmp_path / "genesis.car", tmp_path / "sectors"
    assert cli.main(["genesis", "new", str(template), str(out), "--sectors", str(sectors)]) == 0
    printed = capsys.readouterr().out
    assert f"genesis CID:  {built.cid}\n" in printed
    assert "miner t01000:" in printed
    assert out.read_bytes() == genesis_car_bytes(built)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    assert cli.main(["genesis", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"genesis CID:  {built.cid}\n" in shown and "miner t01000:  4096 bytes raw power" in shown

    # The sectors directory holds what the miner proves from, and its keys in Lotus's format.
    (expected,) = built.miners
    miner = read_presealed(sectors, Address.new_id(1000), "t")
    assert miner.owner_key == expected.owner_key and miner.worker_key == expected.worker_key
    for role in ("owner", "worker"):
        key_file = sectors / f"pre-seal-t01000-{role}.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        PrivateKey.from_lotus_export(key_file.read_text())
    assert [(s.number, s.comm_r, s.comm_d) for s in miner.sectors] == [
        (s.number, s.comm_r, s.comm_d) for s in expected.sectors
    ]
    randomness = bytes(range(32))
    proof = post.generate_window_post(10, randomness, [s.proving_sector() for s in miner.sectors])
    public = [post.PublicSector(s.number, s.comm_r) for s in expected.sectors]
    assert post.verify_window_post(10, randomness, public, proof.to_bytes())

    # A corrupt replica is caught when the directory is read.
    replica = sectors / "sealed" / "s-t01000-1"
    data = bytearray(replica.read_bytes())
    data[100] ^= 1
    replica.write_bytes(bytes(data))
    with pytest.raises(PresealError, match="s-t01000-1: replica does not match its CommR"):
        read_presealed(sectors, Address.new_id(1000), "t")


def test_cli_example_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["genesis", "example"]) == 0
    assert json.loads(capsys.readouterr().out) == example()

    raw = example()
    raw["Miners"][0]["SectorSize"] = 4096
    template = tmp_path / "bad.json"
    template.write_text(json.dumps(raw))
    out = tmp_path / "genesis.car"
    assert cli.main(["genesis", "new", str(template), str(out)]) == 1
    err = capsys.readouterr().err
    assert "Miners[0].SectorSize: sector size 4096 cannot be sealed" in err
    assert not out.exists()

    assert cli.main(["genesis", "new", str(tmp_path / "missing.json"), str(out)]) == 1
    assert "missing.json" in capsys.readouterr().err
    (tmp_path / "junk.car").write_bytes(b"\x01\x02")
    assert cli.main(["genesis", "show", str(tmp_path / "junk.car")]) == 1
    assert "junk.car" in capsys.readouterr().err
