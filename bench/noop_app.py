"""The framework's ceiling for `make bench`: a Flask app that reads the body and answers 202.

Run under gunicorn -w 2 (`noop_app:app`) in its own venv with the project's Flask version.
"""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.post("/", defaults={"path": ""})
@app.post("/<path:path>")
def accept(path: str) -> tuple[dict[str, bool], int]:
    """Read the webhook's body and accept it without doing anything."""
    request.get_data()
    return {"accepted": True}, 202
