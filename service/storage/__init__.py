"""Storage: every SQL statement lives under this package."""
