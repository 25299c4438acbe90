"""The pinned npm packages of tests/interop/js, installed with `npm ci` when the lock file changed.

node_modules is not tracked: a stamp inside it records the sha256 of the package-lock.json it was
installed from, so a lock file that gains packages (a new interop test) reinstalls once, on a clean
clone and on a developer's machine alike.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"
_STAMP = JS_DIR / "node_modules" / ".filpy-lock-sha256"


def node_with_packages(why: str) -> str:
    """The node binary, with tests/interop/js's packages installed as the lock file says."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(f"node and npm are needed for {why} and are not on PATH")
    lock = hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not _STAMP.is_file() or _STAMP.read_text().strip() != lock:
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"npm ci failed in {JS_DIR}:\n{done.stderr}"
        _STAMP.write_text(lock + "\n")
    return node
