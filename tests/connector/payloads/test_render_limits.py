"""Render limits: runaway templates stop within the budget; ordinary template code works."""

from __future__ import annotations

import json
import time

import pytest

from connector.errors import RenderError, TemplateRejected
from connector.payloads.field_limits import NO_LIMITS
from connector.payloads.render_limits import RenderLimits
from connector.payloads.samples import (
    SAMPLE_CONTEXT,
    validate_template,
)
from connector.payloads.templates import compile_template
from tests.connector.payloads.support import (
    TOKEN_CONTEXT,
    render,
)

RUNAWAY = [
    (
        "nested loops",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "loops ran more than",
    ),
    (
        "output bomb",
        "{% for a in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        "payload is larger than",
    ),
    ("huge range", "{% for a in range(10**9) %}{% endfor %}", "MAX_RANGE"),
    ("string repetition", "{{ 'x' * 10**9 }}", "larger than"),
    (
        "doubling a string",
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "larger than",
    ),
    (
        "doubling a list",
        "{% set ns = namespace(a=[0]) %}"
        "{% for i in range(64) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}",
        "larger than",
    ),
    ("huge integer", "{{ 10 ** 100000 }}", "integer wider"),
    ("list repetition", "{{ [0] * 10 ** 9 }}", "repeating a list"),
    ("padding method", "{{ 'x'.ljust(10 ** 9) }}", "not allowed"),
    ("padding format", "{{ '{:>999999999}'.format(1) }}", "not allowed"),
    ("percent format", "{{ '%999999999s' % 1 }}", "not available"),
    ("replace bomb", "{{ ('x' * 100000)|replace('', 'y' * 1000) }}", "larger than"),
    ("join bomb", "{{ range(100000)|join('y' * 1000) }}", "larger than"),
    ("sum of lists", "{{ [[1], [2]]|sum(start=[]) }}", "numbers only"),
    ("infinite recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
]


@pytest.mark.parametrize(
    ("source", "reason"), [row[1:] for row in RUNAWAY], ids=[row[0] for row in RUNAWAY]
)
def test_runaway_templates_stop_within_two_seconds(source: str, reason: str) -> None:
    # CPU time of this thread: what the limit counts, and what a loaded machine does not inflate.
    started = time.thread_time()
    with pytest.raises(RenderError, match=reason) as e:
        compile_template(source, "json").render(SAMPLE_CONTEXT)
    assert time.thread_time() - started < 2.0
    assert e.value.line == 1


def test_the_time_limit_stops_exponential_work() -> None:
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    compiled = compile_template(source, "json", RenderLimits(max_seconds=0.2))
    started = time.thread_time()
    with pytest.raises(RenderError, match="longer than 0.2 s"):
        compiled.render(SAMPLE_CONTEXT)
    assert time.thread_time() - started < 1.0


def test_a_runaway_template_is_refused_at_save_time() -> None:
    source = (
        '{"a": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"}'
    )
    started = time.thread_time()
    with pytest.raises(TemplateRejected, match="render limit"):
        validate_template(source, "json", NO_LIMITS)
    assert time.thread_time() - started < 2.0


def test_ordinary_template_code_still_works() -> None:
    source = (
        '{"props": "{% for key, value in alert.properties|dictsort %}{{ key }}={{ value }}'
        '{{ ";" if not loop.last }}{% endfor %}", '
        '"upper": "{{ alert.host.upper() }}", "joined": "{{ ["a", "b"]|join("+") }}", '
        '"n": {{ [1, 2, 3]|sum }}, "cut": "{{ alert.title|truncate(9, true, "") }}", '
        '"repl": "{{ alert.host|replace("srv", "host-") }}"}'
    )
    assert json.loads(render(source, "json", TOKEN_CONTEXT)) == {
        "props": "alert.type=dataSourceAlert;autotask.accountid=29683999;datapoint=CPUBusyPercent;"
        "instance=cpu1;threshold=> 90;value=99",
        "upper": "SRV02",
        "joined": "a+b",
        "n": 6,
        "cut": "CPU busy",
        "repl": "host-02",
    }
