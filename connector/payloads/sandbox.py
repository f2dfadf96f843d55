"""The Jinja sandbox payload templates run in, hardened so that a render stays bounded.

An immutable sandbox with StrictUndefined and autoescaping off; alert data enters only as
context values, never as template source (reliability-security.md §4.7, S6). On top of the
sandbox: filters and methods that multiply their input by a number argument are left out, list
repetition is refused, every call, loop and value-producing expression counts against the
render's budget (connector.payloads.render_limits), and `##NAME##` tokens become lookups.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn, cast

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.lexer import (
    TOKEN_DATA,
    TOKEN_LBRACKET,
    TOKEN_NAME,
    TOKEN_RBRACKET,
    TOKEN_STRING,
    TOKEN_VARIABLE_BEGIN,
    TOKEN_VARIABLE_END,
    Token,
    TokenStream,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import pass_context, pass_environment
from jinja2.visitor import NodeTransformer

from connector.payloads.context import PROPERTIES_TABLE, TOKENS_TABLE
from connector.payloads.escaping import JsonText, finalize_json, finalize_xml
from connector.payloads.formats import Format
from connector.payloads.render_limits import (
    RenderLimitExceeded,
    as_text,
    check_value,
    current_budget,
    measure,
)
from connector.payloads.tokens import TOKEN_PATTERN, UnknownToken, builtin_token

#: Filters that multiply their input by an argument, print Python reprs, escape for HTML
#: (payloads are escaped for their own format already) or are random are left out.
_OMITTED_FILTERS = frozenset(
    {
        "batch",
        "center",
        "e",
        "escape",
        "forceescape",
        "format",
        "indent",
        "pprint",
        "random",
        "safe",
        "slice",
        "urlize",
        "wordwrap",
        "xmlattr",
    }
)


@pass_context
def _guard_value(context: Context, value: object) -> object:
    """Applied to every call, filter, concatenation and literal container a template makes."""
    current_budget().tick()
    return check_value(value)


@pass_context
def _guard_loop(context: Context, iterable: Iterable[object]) -> Iterator[object]:
    """Applied to every `{% for %}`: counts iterations against the budget."""
    budget = current_budget()
    for item in iterable:
        budget.iteration()
        yield item


@pass_environment
def _join(env: Any, value: Iterable[object], d: object = "", attribute: str | None = None) -> str:
    """Jinja's `join`, refusing a result larger than the value limit before building it."""
    budget = current_budget()
    separator = as_text(d)
    getter = make_attrgetter(env, attribute) if attribute is not None else None
    parts: list[str] = []
    total = 0
    for item in value:
        budget.iteration()
        text = as_text(getter(item) if getter is not None else item)
        total += len(text) + (len(separator) if parts else 0)
        budget.check_size(total)
        parts.append(text)
    budget.charge(total)
    return separator.join(parts)


def _replace(value: object, old: object, new: object, count: int | None = None) -> str:
    """Jinja's `replace`, refusing a result larger than the value limit before building it."""
    text, old_text, new_text = as_text(value), as_text(old), as_text(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    current_budget().charge(len(text) + found * (len(new_text) - len(old_text)))
    return text.replace(old_text, new_text, -1 if count is None else count)


@pass_environment
def _sum(env: Any, iterable: Iterable[object], attribute: str | None = None, start: int = 0) -> Any:
    """Jinja's `sum`, for numbers only (adding lists or strings could grow without bound)."""
    budget = current_budget()
    getter = make_attrgetter(env, attribute) if attribute is not None else None
    total: Any = start
    for item in iterable:
        budget.iteration()
        number = getter(item) if getter is not None else item
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise TypeError("sum adds numbers only")
        total = check_value(total + number)
    return total


def _tojson(value: object) -> JsonText:
    """The value as one JSON value, emitted unescaped into JSON payloads (`"x": {{ v|tojson }}`)."""
    budget = current_budget()
    budget.charge(measure(value, budget))
    return JsonText(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _safe_range(*args: int) -> range:
    for arg in args:
        if isinstance(arg, int) and arg.bit_length() > 64:
            raise OverflowError("range arguments are too large")
    return safe_range(*args)


#: Methods a template may call on built-in values. Anything else (`center`, `ljust`, `zfill`,
#: `format`, `join`, `replace`, `to_bytes` …) could multiply its input by an argument.
_SAFE_METHODS: Mapping[type, frozenset[str]] = {
    str: frozenset(
        {
            "capitalize",
            "casefold",
            "count",
            "endswith",
            "find",
            "isalnum",
            "isalpha",
            "isdecimal",
            "isdigit",
            "islower",
            "isnumeric",
            "isspace",
            "istitle",
            "isupper",
            "lower",
            "lstrip",
            "partition",
            "removeprefix",
            "removesuffix",
            "rfind",
            "rpartition",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "upper",
        }
    ),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    int: frozenset({"real", "imag", "numerator", "denominator"}),
    float: frozenset({"real", "imag", "is_integer"}),
}


def _builtin_type(obj: object) -> type | None:
    for kind in _SAFE_METHODS:
        if isinstance(obj, kind):
            return kind
    if isinstance(obj, set | frozenset | bytes | complex):
        return type(obj)
    return None


class PayloadEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox for payload templates: bounded operators, methods, filters and output."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, fmt: Format) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            finalize=finalize_json if fmt == "json" else finalize_xml,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
            extensions=[_TokenExtension],
        )
        self.payload_format: Format = fmt
        self.filters = {
            name: func for name, func in FILTERS.items() if name not in _OMITTED_FILTERS
        }
        self.filters.update(
            {
                "join": _join,
                "replace": _replace,
                "sum": _sum,
                "tojson": _tojson,
                _GUARD_VALUE: _guard_value,
                _GUARD_LOOP: _guard_loop,
            }
        )
        self.globals.pop("lipsum", None)
        self.globals["range"] = _safe_range

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """The sandbox's rules, and on built-in values only the methods in _SAFE_METHODS."""
        if not super().is_safe_attribute(obj, attr, value):
            return False
        kind = _builtin_type(obj)
        if kind is None:
            return True
        return attr in _SAFE_METHODS.get(kind, frozenset())

    def wrap_str_format(self, value: Any) -> None:
        """No sandboxed `str.format`: `is_safe_attribute` refuses `format` (its widths pad)."""
        return None

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call in a template counts against the render's time limit."""
        current_budget().tick()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`+ * ** %` with their results bounded before they are built."""
        limits = current_budget().limits
        sequences = (str, list, tuple)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string % formatting is not available; use ~ and filters")
        if operator == "*":
            if isinstance(left, list | tuple) or isinstance(right, list | tuple):
                raise SecurityError("repeating a list with * is not available")
            if isinstance(left, str) or isinstance(right, str):
                text, times = (left, right) if isinstance(left, str) else (right, left)
                if isinstance(times, int):
                    current_budget().charge(len(text) * max(times, 0))
            elif _is_int(left) and _is_int(right):
                if left.bit_length() + right.bit_length() > limits.max_int_bits:
                    raise RenderLimitExceeded(f"an integer wider than {limits.max_int_bits} bits")
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0:
            if abs(left) > 1 and left.bit_length() * right > limits.max_int_bits:
                raise RenderLimitExceeded(f"an integer wider than {limits.max_int_bits} bits")
        if operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
            budget = current_budget()
            budget.charge(measure(left, budget) + measure(right, budget))
        return check_value(super().call_binop(context, operator, left, right))

    def concat(self, parts: Iterable[str]) -> str:
        """Join a macro's or block's output, refusing a result larger than the value limit."""
        items = list(parts)
        current_budget().charge(sum(len(item) for item in items))
        return "".join(items)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_GUARD_VALUE = "connector_guard_value"
_GUARD_LOOP = "connector_guard_loop"


class _TokenExtension(Extension):
    """Rewrites `##NAME##` in template text into variable lookups, at the token level.

    The name becomes a string token of the parsed template, never template source, and the value
    is looked up when rendering: nothing an alert contains is ever parsed as template syntax.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        """Split each text token around its `##NAME##` tokens."""
        fmt = cast(PayloadEnvironment, self.environment).payload_format
        for token in stream:
            if token.type != TOKEN_DATA:
                yield token
                continue
            if fmt == "xml" and "<![CDATA[" in token.value:
                line = token.lineno + token.value[: token.value.index("<![CDATA[")].count("\n")
                raise TemplateSyntaxError(
                    "CDATA sections are not allowed in XML payload templates: values are escaped"
                    " as XML text, which inside CDATA would arrive with its references showing",
                    line,
                )
            yield from self._split(token)

    def _split(self, token: Token) -> Iterator[Token]:
        position = 0
        lineno = token.lineno
        for match in TOKEN_PATTERN.finditer(token.value):
            before = token.value[position : match.start()]
            if before:
                yield Token(lineno, TOKEN_DATA, before)
                lineno += before.count("\n")
            yield from _lookup_tokens(lineno, match.group(1))
            position = match.end()
        rest = token.value[position:]
        if rest:
            yield Token(lineno, TOKEN_DATA, rest)


def _lookup_tokens(lineno: int, name: str) -> Iterator[Token]:
    """`{{ __connector_tokens__["NAME"] }}` (or the properties table), as parser tokens."""
    try:
        builtin = builtin_token(name)
    except UnknownToken as e:
        raise TemplateSyntaxError(
            f"{e}; alert properties are written by their exact name, e.g. ##autotask.accountid##",
            lineno,
        ) from e
    table, key = (TOKENS_TABLE, builtin) if builtin is not None else (PROPERTIES_TABLE, name)
    yield Token(lineno, TOKEN_VARIABLE_BEGIN, "{{")
    yield Token(lineno, TOKEN_NAME, table)
    yield Token(lineno, TOKEN_LBRACKET, "[")
    yield Token(lineno, TOKEN_STRING, key)
    yield Token(lineno, TOKEN_RBRACKET, "]")
    yield Token(lineno, TOKEN_VARIABLE_END, "}}")


class Harden(NodeTransformer):
    """Wraps loops and value-producing expressions in guard filters; refuses unsupported tags."""

    def __init__(self, environment: PayloadEnvironment) -> None:
        self.environment = environment

    def _guard(self, node: nodes.Expr, name: str) -> nodes.Expr:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.environment)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._guard(cast(nodes.Expr, node.iter), _GUARD_LOOP)
        return node

    def _value(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return self._guard(node, _GUARD_VALUE)

    visit_Concat = _value
    visit_List = _value
    visit_Dict = _value
    visit_Call = _value

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":
            return node  # an assignment target: `{% for k, v in … %}`, `{% set a, b = … %}`
        return self._value(node)

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        if node.node is None:
            # The filter of a `{% filter %}` or `{% set x | f %}` block: it has no operand.
            self.generic_visit(node)
            return node
        return self._value(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        # `{% call %}` must keep its Call node as it is; guard the call's parts instead.
        self.generic_visit(node.call)
        node.args = [self.visit(arg) for arg in node.args]
        node.defaults = [self.visit(default) for default in node.defaults]
        node.body = [self.visit(child) for child in node.body]
        return node

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.name == "self" and node.ctx == "load":
            raise TemplateSyntaxError("'self' is not available in payload templates", node.lineno)
        return node

    def _unsupported(self, node: nodes.Node) -> NoReturn:
        tag = type(node).__name__.lower()
        raise TemplateSyntaxError(
            f"{{% {tag} %}} is not available in payload templates: a template is one file",
            node.lineno,
        )

    visit_Extends = _unsupported
    visit_Include = _unsupported
    visit_Import = _unsupported
    visit_FromImport = _unsupported
