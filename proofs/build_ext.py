"""Build proofs/_native (the C hot loops for tree hashing and fr32) with the machine's gcc and OpenSSL.

`python -m proofs.build_ext [--force]` compiles proofs/_native.c into proofs/_native<EXT_SUFFIX>, linking
the system libcrypto, and does nothing when the built module is newer than its sources. It exits non-zero
with a message naming what is missing when gcc or the OpenSSL headers are absent; filpy still runs
without the module (on the slower pure-Python path).
"""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_native.c"
CFLAGS = ["-O3", "-fPIC", "-shared", "-Wall", "-Wextra", "-std=c11", "-fno-strict-aliasing"]


class BuildError(Exception):
    """The extension cannot be built here; the message says what is missing."""


def target() -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return HERE / f"_native{suffix}"


def up_to_date(out: Path) -> bool:
    if not out.exists():
        return False
    built = out.stat().st_mtime
    return all(src.stat().st_mtime <= built for src in (SOURCE, Path(__file__).resolve()))


def compiler() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc not found on PATH: install gcc (Debian/Ubuntu: apt-get install gcc)")
    return gcc


def _check_openssl(gcc: str, includes: list[str]) -> None:
    probe = "#include <openssl/sha.h>\nint main(void) { return 0; }\n"
    args = [gcc, "-x", "c", "-", "-o", "/dev/null", *(f"-I{d}" for d in includes), "-lcrypto"]
    result = subprocess.run(args, input=probe.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise BuildError(
            "OpenSSL headers or libcrypto not found (openssl/sha.h, -lcrypto): install libssl-dev "
            "(Debian/Ubuntu) or openssl-devel (Fedora)\n" + result.stderr.decode(errors="replace").strip()
        )


def build(force: bool = False) -> Path:
    """Compile the extension unless it is already newer than its sources; return its path."""
    out = target()
    if not force and up_to_date(out):
        return out
    gcc = compiler()
    includes = python_includes()
    _check_openssl(gcc, includes)
    return compile_extension(gcc, SOURCE, out, includes=includes, libs=["-lcrypto"])


def python_includes() -> list[str]:
    """The include directories holding Python.h; BuildError when the development headers are absent."""
    paths = sysconfig.get_paths()
    if not (Path(paths["include"]) / "Python.h").exists():
        raise BuildError(f"Python.h not found in {paths['include']}: install the Python development headers")
    return sorted({paths["include"], paths["platinclude"]})


def compile_extension(gcc: str, source: Path, out: Path, *, includes: list[str], libs: list[str]) -> Path:
    """Compile one C source into the extension module out, replacing it atomically; return out."""
    # A name .gitignore covers (*/_native*.so, */_dagcbor*.so), that no import of the module picks up, and
    # that two concurrent builds do not share.
    tmp = out.with_name(f"{source.stem}_build_{os.getpid()}.so")
    args = [gcc, *CFLAGS, *(f"-I{d}" for d in includes), str(source), "-o", str(tmp), *libs]
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"compiling {source.name} failed:\n" + result.stderr.decode(errors="replace"))
    # Replace atomically so a process importing the module never sees a half-written file.
    tmp.replace(out)
    return out


def run_build(
    prog: str,
    description: str,
    target_of: Callable[[], Path],
    current: Callable[[Path], bool],
    build_it: Callable[[bool], Path],
    argv: list[str] | None,
) -> int:
    """The command line of a build_ext module (`--force`; what was done, or the BuildError, in one line),
    shared by proofs' and chain.encoding's extensions."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        was_current = not args.force and current(target_of())
        out = build_it(args.force)
    except BuildError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 1
    sys.stdout.write(f"{prog}: {out.name} {'up to date' if was_current else 'built'}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_build("proofs.build_ext", __doc__.splitlines()[0], target, up_to_date, build, argv)


if __name__ == "__main__":
    sys.exit(main())
