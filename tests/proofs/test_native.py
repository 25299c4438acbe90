"""The native extension against the pure-Python reference, threads, and the build script."""

import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import build_ext, commp, fr32, merkle

try:
    from proofs import _native  # type: ignore[attr-defined]
except ImportError:
    _native = None

needs_native = pytest.mark.skipif(_native is None, reason="proofs._native not built (make ext)")


@needs_native
@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=200).flatmap(lambda n: st.binary(min_size=64 * n, max_size=64 * n)))
def test_hash_level_matches_python(level: bytes) -> None:
    assert _native.hash_level(level) == merkle.hash_level_python(level)


@needs_native
@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=6), st.data())
def test_root_from_path_matches_python_and_opens_a_real_tree(height: int, data: st.DataObject) -> None:
    leaves = data.draw(st.binary(min_size=32 << height, max_size=32 << height))
    levels = merkle.tree_levels(leaves)
    index = data.draw(st.integers(min_value=0, max_value=(1 << height) - 1))
    leaf = merkle.node_at(levels[0], index)
    path = merkle.opening(levels, index)
    native = _native.root_from_path(leaf, index, b"".join(path))
    assert native == merkle.root_from_path_python(leaf, index, path) == merkle.root_of(leaves)
    assert merkle.root_from_path(leaf, index, path) == native
    # Another index or a changed sibling commits to another root.
    if path:
        assert _native.root_from_path(leaf, index ^ 1, b"".join(path)) != native or path[0] == leaf
        flipped = bytes([path[-1][0] ^ 1]) + path[-1][1:]
        assert _native.root_from_path(leaf, index, b"".join([*path[:-1], flipped])) != native


@needs_native
def test_root_from_path_refuses_bad_node_sizes() -> None:
    with pytest.raises(ValueError, match="32-byte leaf"):
        _native.root_from_path(bytes(31), 0, b"")
    with pytest.raises(ValueError, match="32-byte leaf"):
        _native.root_from_path(bytes(32), 0, bytes(33))
    with pytest.raises(ValueError, match="32-byte leaf"):
        _native.root_from_path(bytes(32), 0, bytes(32 * 65))
    # The wrapper takes the Python path for what the native loop does not take.
    odd = [bytes(33)]
    assert merkle.root_from_path(bytes(32), 0, odd) == merkle.root_from_path_python(bytes(32), 0, odd)


@needs_native
def test_hash_level_large_input_releases_and_reacquires_the_gil_correctly() -> None:
    level = os.urandom(1 << 16)
    expected = merkle.hash_level_python(level)
    assert _native.hash_level(bytearray(level)) == expected
    assert _native.hash_level(memoryview(level)) == expected
    assert merkle.hash_level is _native.hash_level


@needs_native
@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=0, max_value=40).flatmap(lambda n: st.binary(min_size=127 * n, max_size=127 * n))
)
def test_fr32_matches_python(data: bytes) -> None:
    padded = _native.fr32_pad(data)
    assert padded == fr32.pad_python(data)
    assert _native.fr32_unpad(padded) == data


@needs_native
@pytest.mark.parametrize("blocks", [1, 2, 4, 32, 64, 128, 1024])
def test_subtree_root_matches_python(blocks: int) -> None:
    # 64 blocks is the native batch size: cover below, at and above it.
    data = os.urandom(127 * blocks)
    assert _native.fr32_subtree_root(data) == commp.subtree_root_python(data)


@needs_native
def test_native_rejects_bad_lengths() -> None:
    with pytest.raises(ValueError, match="even number of 32-byte nodes"):
        _native.hash_level(bytes(96))
    with pytest.raises(ValueError, match="multiple of 127"):
        _native.fr32_pad(bytes(128))
    with pytest.raises(ValueError, match="multiple of 128"):
        _native.fr32_unpad(bytes(127))
    with pytest.raises(ValueError, match="top bit set"):
        _native.fr32_unpad(b"\xff" * 128)
    for bad in (0, 127 * 3):
        with pytest.raises(ValueError, match="127 \\* 2\\^k"):
            _native.fr32_subtree_root(bytes(bad))
    with pytest.raises(TypeError):
        _native.hash_level("not bytes")


@needs_native
def test_threads_hash_concurrently_and_correctly() -> None:
    chunks = [os.urandom(127 * 2048) for _ in range(6)]
    expected = [commp.subtree_root_python(c) for c in chunks[:2]]
    with ThreadPoolExecutor(3) as pool:
        roots = list(pool.map(_native.fr32_subtree_root, chunks))
        levels = list(pool.map(_native.hash_level, chunks[:4]))
    assert roots[:2] == expected
    assert roots == [_native.fr32_subtree_root(c) for c in chunks]
    assert levels[0] == merkle.hash_level_python(chunks[0][: len(chunks[0]) // 64 * 64])


# build script ------------------------------------------------------------------------------------------


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("proofs._native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_build_compiles_a_working_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "_native_test.so"
    monkeypatch.setattr(build_ext, "target", lambda: out)
    assert build_ext.build() == out
    built = _load_module(out)
    data = os.urandom(127 * 8)
    assert built.fr32_subtree_root(data) == commp.subtree_root_python(data)
    stamp = out.stat().st_mtime_ns
    assert build_ext.up_to_date(out)
    build_ext.build()
    assert out.stat().st_mtime_ns == stamp  # up to date: not rebuilt


def test_missing_gcc_is_reported(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(build_ext.shutil, "which", lambda _name: None)
    assert build_ext.main(["--force"]) == 1
    assert "gcc not found" in capsys.readouterr().err


def test_missing_openssl_headers_are_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_run(args: list[str], **_kw: object) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(
            args, 1, b"", b"fatal error: openssl/sha.h: No such file or directory"
        )

    monkeypatch.setattr(build_ext.shutil, "which", lambda _name: "/usr/bin/gcc")
    monkeypatch.setattr(build_ext.subprocess, "run", fake_run)
    assert build_ext.main(["--force"]) == 1
    err = capsys.readouterr().err
    assert "libssl-dev" in err and "openssl/sha.h" in err


@needs_native
def test_module_entry_point_reports_up_to_date() -> None:
    if not build_ext.up_to_date(build_ext.target()):
        pytest.skip("the built module is older than its source (run make ext)")
    result = subprocess.run(
        [sys.executable, "-m", "proofs.build_ext"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert "up to date" in result.stdout
