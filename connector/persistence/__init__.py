"""Persistence: the engine and sessions, the typed models, the schema migrations."""
