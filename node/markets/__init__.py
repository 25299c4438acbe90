"""Storage and retrieval markets: client imports, UnixFS and CARs, the piece store, HTTP retrieval and
the retrieval query protocol (docs/retrieval.md); payment channels and StorageDealCollect (docs/paych.md)."""
