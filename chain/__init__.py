"""Filecoin's data and rules: encodings, crypto, types, store, state, VM, consensus, mpool, sync."""
