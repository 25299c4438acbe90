"""Expected consensus: leader election, chain weight, block validation."""
