"""The C hot loops of proofs/_native.c, where `make ext` built them."""

from typing import Any


def native_function(name: str) -> Any:
    """The extension's function `name`; None when the extension is not built (or predates the function),
    so that the caller takes its pure-Python path."""
    try:
        from proofs import _native  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(_native, name, None)
