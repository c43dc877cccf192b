"""``python -m service.cli`` runs the same command line as ``wraparound``."""

from service.cli import app

app()
