"""The formats a payload is written in: JSON or XML (each escapes values its own way)."""

from __future__ import annotations

from typing import Literal

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
