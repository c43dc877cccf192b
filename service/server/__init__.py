"""The HTTP server around the app: uvicorn with read deadlines, and the process model of ``serve``."""
