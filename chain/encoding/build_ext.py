"""Build chain/encoding/_dagcbor (the canonical DAG-CBOR encoder in C) with the machine's gcc.

`python -m chain.encoding.build_ext [--force]` compiles chain/encoding/_dagcbor.c into
chain/encoding/_dagcbor<EXT_SUFFIX> with the same compiler and flags as proofs' extension, and does
nothing when the built module is newer than its source. It exits non-zero with a message naming what is
missing when gcc or the Python headers are absent; filpy still runs without the module (on the
pure-Python encoder, which gives the same bytes more slowly).
"""

import sys
import sysconfig
from pathlib import Path

from proofs.build_ext import compile_extension, compiler, python_includes, run_build

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_dagcbor.c"


def target() -> Path:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return HERE / f"_dagcbor{suffix}"


def up_to_date(out: Path) -> bool:
    return out.exists() and SOURCE.stat().st_mtime <= out.stat().st_mtime


def build(force: bool = False) -> Path:
    """Compile the extension unless it is already newer than its source; return its path."""
    out = target()
    if not force and up_to_date(out):
        return out
    return compile_extension(compiler(), SOURCE, out, includes=python_includes(), libs=[])


def main(argv: list[str] | None = None) -> int:
    return run_build("chain.encoding.build_ext", __doc__.splitlines()[0], target, up_to_date, build, argv)


if __name__ == "__main__":
    sys.exit(main())
