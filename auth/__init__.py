"""SMART Backend Services authentication: client assertions, scopes and access tokens.

This package never imports ``service``; storage it needs is reached through protocols.
"""
