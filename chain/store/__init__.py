"""Storage: the content-addressed blockstore, the chain store and CAR files."""
