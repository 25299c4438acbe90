"""Where the checkout is, for the tests that run its commands or read its files."""

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
