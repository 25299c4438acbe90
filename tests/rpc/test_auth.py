"""Tokens as Lotus issues them, and permissions per token over HTTP and WebSocket."""

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trio

from rpc import auth
from rpc.client import HttpClient, RpcCallError, TransportError, WsClient
from rpc.server import BoundAddress
from tests.rpc.conftest import token
from tests.rpc.toy import SECRET


def test_token_payload_is_lotus_shape() -> None:
    tok = auth.create_token(SECRET, ["read", "write"])
    header, payload, _ = tok.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(header))) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(pad(payload))) == {"Allow": ["read", "write"]}
    assert auth.verify_token(SECRET, tok) == ("read", "write")


def test_tokens_signed_elsewhere_verify_and_forgeries_do_not() -> None:
    # A token made by any HS256 implementation with the same secret (as Lotus's would be) verifies.
    foreign = jwt.encode({"Allow": ["read", "sign"]}, SECRET, algorithm="HS256")
    assert auth.verify_token(SECRET, foreign) == ("read", "sign")
    with pytest.raises(auth.AuthError, match="invalid token"):
        auth.verify_token(b"x" * 32, foreign)
    unsigned = jwt.encode({"Allow": ["admin"]}, None, algorithm="none")
    with pytest.raises(auth.AuthError):
        auth.verify_token(SECRET, unsigned)
    with pytest.raises(auth.AuthError, match="'Allow' must be a list"):
        auth.verify_token(SECRET, jwt.encode({"Allow": "admin"}, SECRET, algorithm="HS256"))
    assert auth.verify_token(SECRET, jwt.encode({}, SECRET, algorithm="HS256")) == ()


def test_perm_levels_and_unknown_perms() -> None:
    assert auth.perms_up_to("sign") == ("read", "write", "sign")
    assert auth.perms_up_to("admin") == ("read", "write", "sign", "admin")
    with pytest.raises(auth.AuthError, match="unknown permission 'root'"):
        auth.create_token(SECRET, ["root"])
    assert len(auth.new_secret()) == 32 and auth.new_secret() != auth.new_secret()


def test_bearer_token_sources() -> None:
    assert auth.bearer_token("Bearer abc", None) == "abc"
    assert auth.bearer_token(None, "q") == "q"
    assert auth.bearer_token("Bearer h", "q") == "h"
    assert auth.bearer_token(None, None) is None
    with pytest.raises(auth.AuthError, match="Bearer"):
        auth.bearer_token("Basic abc", None)


def test_token_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    auth.write_token_file(path, "abc.def.ghi")
    assert path.read_text() == "abc.def.ghi"
    assert os.stat(path).st_mode & 0o777 == 0o600


METHODS = {"read": "Session", "write": "ToyVoid", "sign": "ToySign", "admin": "ToyAdmin"}


@pytest.mark.parametrize("level", ["none", "read", "write", "sign", "admin"])
async def test_permissions_per_token(server: BoundAddress, level: str) -> None:
    granted = () if level == "none" else auth.perms_up_to(level)
    async with HttpClient(server.url(), token=None if level == "none" else token(level)) as client:
        for need, name in METHODS.items():
            allowed = need in granted or (level == "none" and need == "read")
            if allowed:
                await client.call(name)
            else:
                with pytest.raises(RpcCallError) as err:
                    await client.call(name)
                assert err.value.code == 1
                assert err.value.message == f"missing permission to invoke '{name}' (need '{need}')"


async def test_a_token_lists_its_permissions_exactly(server: BoundAddress) -> None:
    only_sign = auth.create_token(SECRET, ["sign"])
    async with HttpClient(server.url(), token=only_sign) as client:
        assert await client.call("ToySign") == "signed"
        with pytest.raises(RpcCallError, match="need 'read'"):
            await client.call("Session")


async def test_bad_tokens_are_refused_with_401(server: BoundAddress) -> None:
    forged = jwt.encode({"Allow": ["admin"]}, b"y" * 32, algorithm="HS256")
    async with httpx.AsyncClient() as http:
        body = b'{"jsonrpc":"2.0","id":1,"method":"Filecoin.Session"}'
        for headers in (
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": "Bearer x.y.z"},
            {"Authorization": "Token abc"},
        ):
            resp = await http.post(server.url(), content=body, headers=headers)
            assert resp.status_code == 401, headers
        resp = await http.post(server.url() + f"?token={forged}", content=body)
        assert resp.status_code == 401
        resp = await http.post(
            server.url() + f"?token={token('admin')}", content=b'{"id":1,"method":"Filecoin.ToyAdmin"}'
        )
        assert resp.json()["result"] == "admin"


async def test_auth_new_and_verify(server: BoundAddress) -> None:
    async with HttpClient(server.url(), token=token("admin")) as admin:
        raw = await admin.call("AuthNew", ["read", "sign"])
        new_token = base64.b64decode(raw).decode()
        assert await admin.call("AuthVerify", new_token) == ["read", "sign"]
        with pytest.raises(RpcCallError, match="unknown permission 'superuser'"):
            await admin.call("AuthNew", ["superuser"])
    async with HttpClient(server.url(), token=new_token) as signer:
        assert await signer.call("ToySign") == "signed"
        with pytest.raises(RpcCallError, match="JWT Verification failed"):
            await signer.call("AuthVerify", "not-a-token")


async def test_websocket_upgrade_checks_the_token(server: BoundAddress) -> None:
    ws_url = server.url("/rpc/v1", scheme="ws")
    async with WsClient.connect(ws_url, token=token("sign")) as client:
        assert await client.call("ToySign") == "signed"
        with pytest.raises(RpcCallError, match="need 'admin'"):
            await client.call("ToyAdmin")
    async with WsClient.connect(ws_url + f"?token={token('admin')}") as client:
        assert await client.call("ToyAdmin") == "admin"
    async with WsClient.connect(ws_url) as client:
        with pytest.raises(RpcCallError, match="need 'sign'"):
            await client.call("ToySign")
    with pytest.raises(TransportError, match="401"):
        async with WsClient.connect(ws_url, token="bad.token.here"):
            pass


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature is checked (jwt.decode called), in order."""
    seen: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_token_cache_checks_each_token_once(checked: list[str]) -> None:
    cache = auth.TokenCache(SECRET, size=2)
    assert cache.perms(None) == {"read"}
    for level in ("read", "write", "admin", "read"):
        assert cache.perms(token(level)) == set(auth.perms_up_to(level))
    assert cache.perms(token("admin")) == set(auth.perms_up_to("admin"))
    # each token's own permissions, checked once while held; at most two are held, the oldest
    # (read's) was dropped for admin's and checked again when it came back
    assert checked == [token("read"), token("write"), token("admin"), token("read")]


def test_token_cache_keeps_no_refusal() -> None:
    cache = auth.TokenCache(SECRET, size=8)
    forged = jwt.encode({"Allow": list(auth.perms_up_to("admin"))}, b"x" * 32, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(auth.AuthError, match="invalid token"):
            cache.perms(forged)
    with pytest.raises(auth.AuthError, match="no API secret"):
        auth.TokenCache(None, size=8).perms(token("read"))
    # a token good for one secret is nothing to a cache of another, whatever the first cache holds
    assert cache.perms(token("admin")) == set(auth.perms_up_to("admin"))
    with pytest.raises(auth.AuthError, match="invalid token"):
        auth.TokenCache(b"y" * 32, size=8).perms(token("admin"))


def test_token_cache_honours_expiry(checked: list[str]) -> None:
    clock = _Clock()
    cache = auth.TokenCache(SECRET, size=8, clock=clock)
    short = jwt.encode({"Allow": ["read", "write"], "exp": int(clock.now) + 60}, SECRET, algorithm="HS256")
    assert cache.perms(short) == {"read", "write"}
    clock.now += 30
    assert cache.perms(short) == {"read", "write"}  # before exp: remembered
    assert len(checked) == 1
    clock.now += 31
    # past exp (the cache's clock) the token is checked again: PyJWT, on the real clock, still takes it
    assert cache.perms(short) == {"read", "write"}
    assert len(checked) == 2
    expired = jwt.encode({"Allow": ["admin"], "exp": int(time.time()) - 1}, SECRET, algorithm="HS256")
    with pytest.raises(auth.AuthError, match="expired"):
        cache.perms(expired)


async def test_a_server_refuses_an_expired_token_it_once_took(server: BoundAddress) -> None:
    """The server's cache keeps a token with `exp` only until then: after it, calls get 401."""
    exp = int(time.time()) + 2
    soon = jwt.encode({"Allow": ["read", "write"], "exp": exp}, SECRET, algorithm="HS256")
    async with HttpClient(server.url(), token=soon) as client:
        await client.call("ToyVoid")
        await client.call("ToyVoid")
        await trio.sleep(max(0.0, exp - time.time()) + 0.2)
        with pytest.raises(TransportError, match="401"):
            await client.call("ToyVoid")
