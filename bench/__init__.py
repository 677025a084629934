"""Load and latency benchmark of the whole stack: ``make bench`` (see bench/README.md)."""
