"""How `connector run` and `connector sandbox` show secrets: never preset ones (issue 15)."""

from __future__ import annotations

import io

import pytest

from connector.cli import shown_secret


class Terminal(io.StringIO):
    """Standard output that is (or is not) a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "kwargs", "expected"),
    [
        (True, {"preset": "CONNECTOR_HOOK_TOKEN"}, "preset (CONNECTOR_HOOK_TOKEN); not shown"),
        (False, {"preset": "CONNECTOR_HOOK_TOKEN"}, "preset (CONNECTOR_HOOK_TOKEN); not shown"),
        (True, {"kept_in": "var/t.txt"}, "s3cret  (shown this once; kept in var/t.txt)"),
        (False, {"kept_in": "var/t.txt"}, "kept in var/t.txt"),
        (True, {"kept_in": "var/t.txt", "fresh": False}, "kept in var/t.txt"),
        (True, {}, "s3cret"),
        (False, {}, "generated at start; shown on a terminal only"),
    ],
)
def test_a_secret_is_shown_only_when_just_generated_and_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tty: bool, kwargs: dict[str, object], expected: str
) -> None:
    monkeypatch.setattr("sys.stdout", Terminal(tty))
    assert shown_secret("s3cret", **kwargs) == expected  # type: ignore[arg-type]
