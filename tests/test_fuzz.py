"""S11: every fuzz harness (fuzz/*.py) runs N executions with no finding and no input over 1 s.

N is FUZZ_RUNS: 50,000 by default (CI), FUZZ_RUNS=1000000 nightly. Each harness runs in its own
process (libFuzzer owns it: a finding ends it), seeded from tests/fixtures and fuzz/seeds, with
fuzz/regressions (every input a fuzzer ever caught) replayed first. A finding fails the test
with the harness's traceback and the path of the input that caused it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
HARNESSES = sorted(path.stem for path in FUZZ.glob("*.py") if not path.name.startswith("_"))
#: Executions per harness: S11 asks for 50,000 in CI and 1,000,000 nightly.
RUNS = int(os.environ.get("FUZZ_RUNS", "50000"))
#: Wall-clock limit of one harness run: generous per execution, as CI machines are shared.
DEADLINE = 120 + RUNS * 0.01
#: libFuzzer's memory ceiling per harness process.
RSS_LIMIT_MB = 2048

# atheris ships wheels for CPython 3.11 to 3.13 on Linux only (see pyproject.toml).
pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None,
        reason="atheris is not installed (no wheel for this Python or platform): fuzzing skipped",
    ),
    pytest.mark.timeout(DEADLINE + 60),
]

_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)


def test_every_harness_is_listed() -> None:
    assert HARNESSES == [
        "alertmanager",
        "datto_rmm",
        "generic",
        "logicmonitor",
        "office_protect",
        "raw_bodies",
        "safe_xml",
        "signatures",
        "soap_answers",
        "ticket_callouts",
    ]


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs_clean(harness: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    command = [
        sys.executable,
        str(FUZZ / f"{harness}.py"),
        f"-runs={RUNS}",
        "-timeout=1",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=DEADLINE
    )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = _DONE.search(done.stderr)
    artifacts = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert done.returncode == 0 and found, (
        f"{harness}: exit {done.returncode}, inputs kept in {tmp_path}: {artifacts}\n"
        + done.stderr[-6000:]
    )
    assert int(found[1]) == RUNS
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{harness}: {RUNS} runs in {seconds:.1f} s ({RUNS / seconds:.0f}/s), CPU {cpu:.1f} s")
