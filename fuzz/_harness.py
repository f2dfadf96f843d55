"""What every fuzz harness shares: the repository on sys.path, seed corpora, starting libFuzzer.

A harness is run as a script, `python fuzz/<target>.py [libFuzzer flags] [corpus dirs]`
(tests/test_fuzz.py runs each one so). Without a corpus directory it seeds itself from its
`SEEDS` (captured payloads under tests/fixtures/) and writes what it learns into a temporary
directory, never into the repository.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # The checkout's code, not an installed copy, is what gets fuzzed.
    sys.path.insert(0, str(ROOT))

#: The modules whose coverage guides the fuzzer: the project's own (and the harness helpers).
#: Instrumenting marshmallow, json and the rest too halved the executions per second (1,500
#: against 3,300 on the LogicMonitor harness) for branches that are not ours to fix.
INSTRUMENTED = ["adapters", "connector", "_sources", "_checks"]
#: Where the real captured payloads are: the seeds of the source harnesses.
SOURCES = ROOT / "tests" / "fixtures" / "sources"
#: The bodies shipped for pasting on the sending side (adapters/sources/bodies).
BODIES = ROOT / "adapters" / "sources" / "bodies"
#: Hand-written seeds for what no test fixture holds (SOAP answers, XML attacks).
SEEDS = Path(__file__).resolve().parent / "seeds"
#: XML's tokens, for the XML harnesses.
XML_DICT = Path(__file__).resolve().parent / "xml.dict"
#: Regression inputs: one file per finding of a fuzzer, replayed by every run of its harness.
REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def seeds(*folders: Path) -> list[str]:
    """The seed folders that exist, as libFuzzer arguments."""
    return [str(folder) for folder in folders if folder.is_dir()]


#: Values a JSON mutation puts in place of one value: every type, the edges of each.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**64),
    10**400,
    0.5,
    1e308,
    -1e-320,
    float("nan"),
    float("inf"),
    "",
    " ",
    "\x00",
    "\ud800",
    "\u202e",
    "é" * 300,
    "x" * 1_001,
    "1e999",
    "2024-02-30T25:61:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1700000000000",
    "-99999999999999999999",
    "##HOST##",
    "[site_id]",
    [],
    [[]],
    {},
    {"": ""},
]


def _mutate_json(value: Any, rng: random.Random) -> Any:
    """`value` with one value somewhere in it replaced, removed, or given a sibling."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        choice = rng.random()
        if choice < 0.1:
            return {k: v for k, v in value.items() if k != key}
        if choice < 0.2:
            return {**value, rng.choice(["", "\x00", key + "_", "layout"]): rng.choice(ODD_VALUES)}
        return {**value, key: _mutate_json(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        choice = rng.random()
        if choice < 0.1:
            return value[:index] + value[index + 1 :]
        if choice < 0.2:
            return [*value, value[index]]
        return [*value[:index], _mutate_json(value[index], rng), *value[index + 1 :]]
    return rng.choice(ODD_VALUES)


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """libFuzzer's byte mutations, and for JSON bodies half the time one value changed.

    Bytes alone seldom keep a body JSON; these change types and edges inside valid bodies.
    """
    rng = random.Random(seed)
    if rng.random() < 0.5:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            pass
        else:
            text = json.dumps(_mutate_json(value, rng), ensure_ascii=rng.random() < 0.5)
            mutated = text.encode("utf-8", "surrogatepass")
            if len(mutated) <= max_size:
                return mutated
    return bytes(atheris.Mutate(data, max_size))


def main(
    test_one: Callable[[bytes], None],
    default_seeds: Sequence[str],
    *,
    json_bodies: bool = False,
    dictionary: Path | None = None,
    max_len: int = 20_000,
) -> None:
    """Run libFuzzer on `test_one`: its seeds (and regression inputs) after any corpus given.

    Files alone as arguments (a crash to replay) are run once each, without the seeds.
    `json_bodies`: mutate JSON inputs value by value too (`mutator`); `dictionary`: a libFuzzer
    dictionary of the format's tokens.
    """
    argv = list(sys.argv)
    extra: dict[str, Any] = {"custom_mutator": mutator} if json_bodies else {}
    given = [arg for arg in argv[1:] if not arg.startswith("-")]
    if given and all(Path(arg).is_file() for arg in given):
        atheris.Setup(argv, test_one, **extra)
        atheris.Fuzz()
        return
    if not given:
        # libFuzzer writes new inputs into its first corpus folder: a scratch one, so that the
        # seeds in the repository stay as they are.
        argv.append(tempfile.mkdtemp(prefix="fuzz-corpus-"))
    if not any(arg.startswith(("-runs=", "-max_total_time=")) for arg in argv):
        argv.append("-max_total_time=60")  # a bare run stops after a minute, not never
    if not any(arg.startswith("-max_len=") for arg in argv):
        argv.append(f"-max_len={max_len}")
    if dictionary is not None and not any(arg.startswith("-dict=") for arg in argv):
        argv.append(f"-dict={dictionary}")
    atheris.Setup([*argv, *default_seeds], test_one, **extra)
    atheris.Fuzz()
