"""The serving parent's own parts: the metrics directory and the listening socket."""

from __future__ import annotations

import multiprocessing
import os
import socket
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from prometheus_client import values

from connector.serving import (
    METRICS_DIR_VARIABLE,
    listen,
    lower_priority,
    metrics_dir,
    use_metrics_dir,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No metrics directory set, and prometheus_client's value class restored afterwards."""
    # Set, then deleted: monkeypatch records the variable as it was (perhaps absent) at its first
    # change, so what use_metrics_dir sets is undone too (a delenv of an absent variable records
    # nothing, and the directory leaked into every later test of the process).
    monkeypatch.setenv(METRICS_DIR_VARIABLE, "unset")
    monkeypatch.delenv(METRICS_DIR_VARIABLE)
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    return monkeypatch


def test_the_metrics_directory_is_the_preset_one_else_the_default_else_temporary(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert metrics_dir(tmp_path / "var") == (tmp_path / "var", False)
    directory, temporary = metrics_dir(None)
    assert temporary and directory.is_dir()
    directory.rmdir()
    clean_env.setenv(METRICS_DIR_VARIABLE, str(tmp_path / "preset"))
    assert metrics_dir(tmp_path / "var") == (tmp_path / "preset", False)


def test_using_a_metrics_directory_empties_it_and_names_it_for_the_children(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old counts")
    (directory / "README").write_text("not ours")

    use_metrics_dir(directory)

    assert sorted(p.name for p in directory.iterdir()) == ["README"]
    assert os.environ[METRICS_DIR_VARIABLE] == str(directory.resolve())
    assert getattr(values.ValueClass, "_multiprocess", False)


def test_listen_on_port_0_binds_a_free_port() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        sock.close()


def _niceness_after(steps: int, pipe: Connection) -> None:
    lower_priority(steps)
    pipe.send(os.nice(0))


@pytest.mark.parametrize("steps", [0, 5])
def test_a_worker_runs_the_given_steps_below_the_web_processes(steps: int) -> None:
    """WORKER_NICENESS: webhooks first (serving.lower_priority), in a process of its own."""
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_niceness_after, args=(steps, theirs)
    )
    child.start()
    assert ours.poll(30), "the child did not answer"
    assert ours.recv() == min(os.nice(0) + steps, 19)
    child.join(30)
    assert child.exitcode == 0
