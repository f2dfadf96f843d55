"""Payloads: tokens, the render context, Jinja sandbox, escaping, limits, extraction."""
