"""The message pool: pending messages, their checks and replacement, selection for blocks, gas estimates."""
