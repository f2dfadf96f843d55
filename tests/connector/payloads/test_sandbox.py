"""The Jinja sandbox: template code cannot reach Python internals."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from adapters.targets.autotask.profile import TICKET_LIMITS
from connector.errors import RenderError, TemplateRejected
from connector.payloads.samples import validate_template
from connector.payloads.templates import compile_template

ESCAPES = [
    ("class mro", "{{ ''.__class__.__mro__ }}"),
    ("cycler globals", "{{ cycler.__init__.__globals__ }}"),
    ("attr format", "{{ 'x'|attr('format') }}"),
    ("str.format", "{{ '{0.__class__}'.format(alert) }}"),
    ("self", "{{ self }}"),
    ("self context", "{{ self._TemplateReference__context }}"),
    ("subclasses", "{{ ().__class__.__base__.__subclasses__() }}"),
    ("joiner globals", "{{ joiner.__init__.__globals__.os }}"),
    ("namespace globals", "{{ namespace.__init__.__globals__ }}"),
    ("range globals", "{{ range.__globals__ }}"),
    ("attr dunder", "{{ alert|attr('__class__') }}"),
    ("mutating a dict", "{{ alert.update({'title': 'x'}) }}"),
    ("include", "{% include '/etc/passwd' %}"),
    ("import", "{% import 'x' as y %}"),
    ("extends", "{% extends 'base' %}"),
]


@pytest.mark.parametrize("attempt", [row[1] for row in ESCAPES], ids=[row[0] for row in ESCAPES])
def test_sandbox_escapes_are_refused_at_save_time(attempt: str) -> None:
    source = f'{{\n  "title": "ok",\n  "x": "{attempt}"\n}}'
    with pytest.raises(TemplateRejected, match="not allowed|not available") as e:
        validate_template(source, "json", TICKET_LIMITS)
    assert e.value.line == 3
    assert e.value.status == 400


#: The escapes S6 names, and two more that would act if they ran; none is caught at compile time.
RENDER_ESCAPES = [
    *ESCAPES[:4],
    ("subclasses", "{{ ().__class__.__base__.__subclasses__() }}"),
    ("mutating a dict", "{{ alert.update({'title': 'changed'}) }}"),
]


@pytest.mark.parametrize(
    "attempt", [row[1] for row in RENDER_ESCAPES], ids=[row[0] for row in RENDER_ESCAPES]
)
def test_sandbox_escapes_that_skip_the_save_check_raise_a_security_error_when_rendered(
    attempt: str,
) -> None:
    """A template stored without validate_template (an import, an old row) is still sandboxed."""
    alert = {"title": "Disk full"}
    template = compile_template(f'{{"x": "{attempt}"}}', "json")

    with pytest.raises(RenderError) as refused:
        template.render({"alert": alert})

    assert isinstance(refused.value.__cause__, SecurityError)
    assert refused.value.details is not None and refused.value.details["kind"] == "security"
    assert alert == {"title": "Disk full"}  # nothing ran
