"""The web app for people at partners and clinics (``/app/``): server-rendered pages on the domain layer.

See docs/adr/0013-web-app.md for sessions, CSRF and the second factor.
"""
