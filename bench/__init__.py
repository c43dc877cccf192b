"""Load benchmark of the Wraparound API against the ceiling of its stack (docs/PERFORMANCE.md)."""
