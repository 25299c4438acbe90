"""Byte-level encodings: DAG-CBOR, CIDs, multihashes, varints and Filecoin big integers."""

from chain.encoding.errors import DecodeError

__all__ = ["DecodeError"]
