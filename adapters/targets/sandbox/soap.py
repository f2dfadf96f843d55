"""Autotask's SOAP 1.6 API (ATWS) as the sandbox serves it."""

from __future__ import annotations

from flask import Flask

from adapters.targets.sandbox.app import Sandbox


def register(app: Flask, sandbox: Sandbox) -> None:
    """Mount the SOAP endpoint on `app`."""
