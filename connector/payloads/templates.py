"""Compiling payload templates and rendering them, with template lines in every error."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from types import GeneratorType, TracebackType
from typing import cast

from jinja2.exceptions import SecurityError, TemplateSyntaxError

from connector.errors import RenderError, TemplateRejected
from connector.payloads.context import RenderContext
from connector.payloads.field_limits import InvalidPayload, parse_and_cut
from connector.payloads.formats import FORMATS, Format
from connector.payloads.render_limits import RenderLimitExceeded, RenderLimits, metered
from connector.payloads.sandbox import Harden, PayloadEnvironment

MAX_TEMPLATE_CHARS = 64 * 1024

_TEMPLATE_FILENAME = "<payload template>"

_ENVIRONMENTS: dict[Format, PayloadEnvironment] = {}


def _environment(fmt: Format) -> PayloadEnvironment:
    if fmt not in FORMATS:
        raise ValueError(f"unknown payload format {fmt!r}; expected json or xml")
    env = _ENVIRONMENTS.get(fmt)
    if env is None:
        env = _ENVIRONMENTS[fmt] = PayloadEnvironment(fmt)
    return env


@dataclass(frozen=True)
class Rendered:
    """A rendered payload and, for error messages, which template line produced which part."""

    text: str
    #: (offset in text, template line, whether the chunk is template text) per emitted chunk.
    spans: tuple[tuple[int, int, bool], ...] = ()

    def template_line(self, offset: int) -> int | None:
        """The template line that produced the character at `offset`, if known."""
        if not self.spans:
            return None
        index = bisect.bisect_right([span[0] for span in self.spans], offset) - 1
        start, line, literal = self.spans[max(index, 0)]
        # Inside template text, count the lines; a value's lines are all its expression's.
        return line + self.text[start:offset].count("\n") if literal else line


class CompiledTemplate:
    """A compiled payload template; `render` it once per alert event."""

    def __init__(self, source: str, fmt: Format, limits: RenderLimits) -> None:
        env = _environment(fmt)
        self.source = source
        self.format: Format = fmt
        self.limits = limits
        self._lines = source.splitlines(keepends=True)
        self._line_starts = [0]
        for line in self._lines:
            self._line_starts.append(self._line_starts[-1] + len(line))
        try:
            tree = env.parse(source, filename=_TEMPLATE_FILENAME)
            Harden(env).visit(tree)
            code = env.compile(tree, filename=_TEMPLATE_FILENAME)
        except TemplateSyntaxError as e:
            raise TemplateRejected(
                f"line {e.lineno}: {e.message}", line=e.lineno, details={"reason": e.message}
            ) from e
        self._template = env.template_class.from_code(env, code, env.make_globals(None))
        self._chunk_lines: dict[tuple[int, str], tuple[int, bool]] = {}

    def render(self, context: RenderContext | Mapping[str, object]) -> str:
        """The payload for `context`; RenderError (with the template line) when it cannot be."""
        return self.render_traced(context).text

    def render_payload(
        self, context: RenderContext | Mapping[str, object], limits: Mapping[str, int]
    ) -> str:
        """Render, check the payload parses and cut its fields to `limits` (`enforce_limits`)."""
        rendered = self.render_traced(context)
        try:
            return parse_and_cut(rendered.text, self.format, limits)
        except InvalidPayload as e:
            line = rendered.template_line(e.offset) if e.offset is not None else None
            raise RenderError(with_line(str(e), line), line=line) from e

    def render_traced(self, context: RenderContext | Mapping[str, object]) -> Rendered:
        """Render, keeping which template line produced each part of the output."""
        variables = context.variables() if isinstance(context, RenderContext) else dict(context)
        chunks: list[str] = []
        spans: list[tuple[int, int, bool]] = []
        size = 0
        template = self._template
        generator = cast(
            "GeneratorType[str, None, None]",
            template.root_render_func(template.new_context(variables)),
        )
        with metered(self.limits) as budget:
            try:
                for chunk in generator:
                    budget.tick()
                    frame = generator.gi_frame
                    spans.append((size, *self._chunk_line(chunk, frame.f_lineno if frame else 0)))
                    size += len(chunk)
                    if size > self.limits.max_output_chars:
                        raise RenderLimitExceeded(
                            f"the payload is larger than {self.limits.max_output_chars} characters"
                        )
                    chunks.append(chunk)
            # Template code can raise whatever Python can (TypeError, ZeroDivisionError …): every
            # failure of one render is that render's error, with its template line.
            except Exception as e:  # noqa: BLE001
                generator.close()
                raise _render_error(e, spans[-1][1] if spans else None) from e
        return Rendered("".join(chunks), tuple(spans))

    def _chunk_line(self, chunk: str, code_line: int) -> tuple[int, bool]:
        """Where a chunk starts: its place in the source if it is template text, else its line.

        Jinja maps generated code to the line of the last expression before it, so text after a
        block tag would be attributed to that tag; looking the text up from there is exact.
        """
        key = (code_line, chunk)
        known = self._chunk_lines.get(key)
        if known is not None:
            return known
        line = self._template.get_corresponding_lineno(code_line) if code_line else 1
        found = -1
        if chunk.strip() and line <= len(self._lines):
            found = self.source.find(chunk, self._line_starts[max(line - 1, 0)])
        result = (
            (bisect.bisect_right(self._line_starts, found), True) if found >= 0 else (line, False)
        )
        if len(self._chunk_lines) < 4096:  # template text repeats; values mostly do not
            self._chunk_lines[key] = result
        return result


def with_line(message: str, line: int | None) -> str:
    """`message`, prefixed with the template line when it is known."""
    return f"line {line}: {message}" if line else message


def source_line(source: str, line: int | None) -> str | None:
    """The text of a template's 1-based `line` (to show beside an error), if it has one."""
    lines = source.splitlines()
    return lines[line - 1] if line and 0 < line <= len(lines) else None


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line of the innermost template frame in a traceback."""
    line = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _render_error(error: Exception, fallback_line: int | None = None) -> RenderError:
    line = _template_line(error.__traceback__) or fallback_line
    if isinstance(error, SecurityError):
        reason = f"not allowed in payload templates: {error}"
    elif isinstance(error, RenderLimitExceeded):
        reason = f"render limit: {error}"
    elif isinstance(error, OverflowError | RecursionError | MemoryError):
        reason = f"render limit: {error}"
    else:
        reason = f"{type(error).__name__}: {error}"
    return RenderError(
        with_line(reason, line), line=line, details={"reason": reason, "kind": _kind(error)}
    )


def _kind(error: Exception) -> str:
    if isinstance(error, SecurityError):
        return "security"
    if isinstance(error, RenderLimitExceeded | OverflowError | RecursionError | MemoryError):
        return "limit"
    return "error"


def compile_template(
    source: str, fmt: Format, limits: RenderLimits | None = None
) -> CompiledTemplate:
    """Compile a payload template; TemplateRejected (with its line) if it is not valid Jinja."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateRejected(
            f"the template has {len(source)} characters; at most {MAX_TEMPLATE_CHARS} are allowed"
        )
    return CompiledTemplate(source, fmt, limits or RenderLimits())
