"""docker-compose.yml for real, with podman and podman-compose (/work/shared/CONTAINERS.md): the image is
built from the Dockerfile, `podman-compose up` makes the shared genesis (the one-shot `genesis` service)
and starts the bootstrap node, the two miners and the plain full node (host networking, 127.0.0.1 ports
chosen free for this run), and the testnet works: every node answers and is connected to the three
others, the chain grows with tipsets holding blocks of both miners, the full node follows the same
head, each container's healthcheck (Filecoin.Version) passes, and `filpy testnet status` run in a
container shows the four nodes. `podman-compose down -v` removes the containers and the volume whatever
happens.

Skipped, saying why, where podman, podman-compose or the local Debian base image are missing."""

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from rpc.client import HttpClient, RpcCallError, TransportError
from tests.e2e.devnet_process import ROOT

pytestmark = pytest.mark.slow

PODMAN: Final = shutil.which("podman")
COMPOSE: Final = shutil.which("podman-compose")
IMAGE: Final = "localhost/filpy:latest"
BASE_IMAGE: Final = "docker.io/library/debian:bookworm-slim"
SERVICES: Final = ("bootstrap", "miner1", "miner2", "fullnode")
WAIT: Final = 180.0


def _skip_reason() -> str | None:
    if PODMAN is None or COMPOSE is None:
        return (
            "podman and podman-compose are needed to run docker-compose.yml here (install them as "
            "/work/shared/CONTAINERS.md says)"
        )
    exists = subprocess.run([PODMAN, "image", "exists", BASE_IMAGE], capture_output=True, timeout=60)
    if exists.returncode != 0:
        return f"no local {BASE_IMAGE} image (make it with debootstrap as /work/shared/CONTAINERS.md says)"
    return None


def _free_base(count: int) -> int:
    """A port such that port..port+count-1 are free on 127.0.0.1."""
    for _ in range(100):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no free port range found")


def _build() -> None:
    assert PODMAN is not None
    command = [PODMAN, "build", "--format", "docker", "--network=host", "-t", IMAGE]
    cert = os.environ.get("PIP_CERT")
    if cert and Path(cert).is_file():  # a TLS-intercepting proxy's CA, as the Dockerfile explains
        command += ["--volume", f"{cert}:/etc/ssl/host-ca.crt:ro"]
        command += ["--build-arg", "PIP_CERT=/etc/ssl/host-ca.crt"]
    done = subprocess.run([*command, str(ROOT)], capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture
def project() -> Iterator[tuple[str, dict[str, str]]]:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    assert COMPOSE is not None and PODMAN is not None
    _build()
    name = f"filpytest{random.randrange(1 << 30):x}"
    env = {
        **os.environ,
        "FILPY_API_PORT": str(_free_base(4)),
        "FILPY_P2P_PORT": str(_free_base(4)),
        "FILPY_BLOCK_DELAY": "2",
    }
    compose = [COMPOSE, "-p", name, "-f", str(ROOT / "docker-compose.yml")]
    try:
        yield name, env
    finally:
        subprocess.run([*compose, "down", "-v", "-t", "10"], env=env, capture_output=True, timeout=300)
        # whatever down left (a failed start): the project's containers and volume by name
        for service in ("genesis", *SERVICES):
            subprocess.run([PODMAN, "rm", "-f", f"{name}_{service}_1"], capture_output=True, timeout=60)
        subprocess.run([PODMAN, "volume", "rm", "-f", f"{name}_testnet"], capture_output=True, timeout=60)


async def _call(port: int, method: str, *params: Any) -> Any:
    async with HttpClient(f"http://127.0.0.1:{port}/rpc/v1", timeout=10) as api:
        return await api.call(method, *params)


async def test_compose_testnet(project: tuple[str, dict[str, str]]) -> None:
    name, env = project
    assert COMPOSE is not None and PODMAN is not None
    compose = [COMPOSE, "-p", name, "-f", str(ROOT / "docker-compose.yml")]
    up = subprocess.run([*compose, "up", "-d"], env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    ports = [int(env["FILPY_API_PORT"]) + i for i in range(4)]

    async def logs() -> str:
        done = await trio.run_process([*compose, "logs"], env=env, capture_stdout=True, capture_stderr=True)
        return done.stdout.decode(errors="replace")[-4000:]

    async def until(
        condition: Callable[[], Awaitable[bool]], failure: str, timeout: float = WAIT, every: float = 1
    ) -> None:
        """Poll condition every `every` seconds for at most timeout; fail saying failure, with the logs."""
        with trio.move_on_after(timeout) as scope:
            while not await condition():
                await trio.sleep(every)
        assert not scope.cancelled_caught, f"{failure}:\n{await logs()}"

    async def all_connected() -> bool:
        try:
            for port in ports:
                await _call(port, "Version")
                if len(await _call(port, "NetPeers")) < 3:
                    return False
        except (RpcCallError, TransportError, OSError):
            return False
        return True

    await until(all_connected, "the compose testnet did not come up")

    async def two_miners() -> bool:
        ts = await _call(ports[3], "ChainHead")  # the plain full node follows the chain
        while ts["Height"] > 0:
            if sorted(b["Miner"] for b in ts["Blocks"]) == ["t01000", "t01001"]:
                return True
            ts = await _call(ports[3], "ChainGetTipSet", ts["Blocks"][0]["Parents"])
        return False

    await until(two_miners, "no tipset with both miners' blocks")

    async def converged() -> bool:
        heads = [await _call(port, "ChainHead") for port in ports]
        return len({tuple(c["/"] for c in h["Cids"]) for h in heads}) == 1 and heads[0]["Height"] > 3

    await until(converged, "the four nodes did not agree on a head", timeout=WAIT / 2, every=0.5)

    for service in SERVICES:
        check = subprocess.run(
            [PODMAN, "healthcheck", "run", f"{name}_{service}_1"], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, f"{service}: {check.stdout} {check.stderr}"
    # `filpy testnet status` inside a container finds the four nodes by their api files (no pid files:
    # compose started them), all on one head.
    status = subprocess.run(
        [PODMAN, "exec", f"{name}_fullnode_1", "filpy", "testnet", "status", "--dir", "/data/testnet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and "4 of 4 nodes answer" in status.stdout, status.stdout + status.stderr
    genesis = subprocess.run(
        [PODMAN, "inspect", "-f", "{{.State.ExitCode}}", f"{name}_genesis_1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert genesis.stdout.strip() == "0"  # the one-shot service made the genesis and exited
