"""HTTP: thin FastAPI routes that parse, authorise and call domain code."""
