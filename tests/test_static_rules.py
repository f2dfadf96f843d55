"""S13's custom rules, checked on the code's syntax tree (as tests/test_architecture.py does).

1. Every HTTP call through requests (the module's functions, or a requests.Session) passes
   `timeout=`: without one a call can wait forever.
2. No XML is parsed except by connector/safe_xml.py (`parse_untrusted`): no raw lxml parse call,
   no parser built elsewhere, no xml.etree, xml.dom, xml.sax or expat.
3. No non-sandboxed Jinja environment: user templates (payload templates) are rendered only by
   a SandboxedEnvironment or ImmutableSandboxedEnvironment. Flask's own `app.jinja_env`, which
   renders the admin pages from connector/templates (files in this repository, autoescaped,
   never written by a user), is not constructed in our code and so is out of the rule's reach
   by design; `render_template_string` (a user string through Flask's environment) is refused.
4. No `==` or `!=` with an operand that names a secret (secret, token, signature, digest, hmac,
   password, api_key): a signature or token is compared only with hmac.compare_digest or
   secrets.compare_digest (S1), whose time does not depend on where the bytes differ.

Each rule has a self-test: planted offenders are found and the allowed forms are not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The code the rules hold for: the service, the tools and benchmarks, the fuzz harnesses. The
#: tests are left out: they parse (rule 2) and compare (rule 4) what the code under test wrote,
#: and they never run in a deployment.
CHECKED = ("connector", "adapters", "tools", "bench", "fuzz")
#: The one module that may build and use an XML parser.
HARDENED_XML = "connector/safe_xml.py"

HTTP_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "request"}
XML_PARSE_CALLS = {"fromstring", "parse", "XML", "XMLParser", "iterparse", "XMLPullParser"}
#: Modules that parse XML (xml.sax.saxutils only escapes text, so it is allowed).
XML_PARSER_MODULES = ("xml.etree", "xml.dom", "xml.sax", "xml.parsers", "lxml.objectify")
JINJA_UNSANDBOXED = {"Environment", "Template", "NativeEnvironment"}
SECRET_WORD = re.compile(r"secret|token|signature|digest|hmac|password|api_?key", re.IGNORECASE)
#: Calls whose arguments are SQL, not Python comparisons (see `secret_comparisons`).
SQL_CLAUSES = {"where", "filter", "filter_by", "having", "on_conflict_do_update"}


def checked_files() -> list[Path]:
    """Every Python file the rules hold for."""
    files = [path for folder in CHECKED for path in sorted((ROOT / folder).rglob("*.py"))]
    return [*files, ROOT / "wsgi.py"]


def rel(path: Path) -> str:
    """`path` as written in the repository."""
    return path.relative_to(ROOT).as_posix()


def dotted(node: ast.AST) -> str:
    """`a.b.c` for a name or attribute chain, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def last_name(node: ast.AST) -> str:
    """The last name of a receiver: `session` for `session`, `self.session` and `local.session`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


# -- rule 1: requests calls carry a timeout -------------------------------------------------------


def _makes_session(node: ast.AST | None) -> bool:
    """Whether `node` contains a call of requests.Session() (`session or requests.Session()`)."""
    return node is not None and any(
        isinstance(sub, ast.Call) and dotted(sub.func) in ("requests.Session", "Session")
        for sub in ast.walk(node)
    )


def session_names(tree: ast.AST) -> set[str]:
    """Names (last part) bound to a requests.Session: assigned one, or annotated as one."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _makes_session(node.value):
            names.update(last_name(target) for target in node.targets)
        elif isinstance(node, ast.AnnAssign | ast.arg):
            annotation = node.annotation
            value = node.value if isinstance(node, ast.AnnAssign) else None
            target = node.target if isinstance(node, ast.AnnAssign) else node
            if _makes_session(value) or (
                annotation is not None and "requests.Session" in ast.unparse(annotation)
            ):
                names.add(node.arg if isinstance(target, ast.arg) else last_name(target))
        elif isinstance(node, ast.withitem) and _makes_session(node.context_expr):
            if node.optional_vars is not None:
                names.add(last_name(node.optional_vars))
    return names - {""}


def calls_without_timeout(source: str, where: str = "") -> Iterator[str]:
    """Every requests call (module function or session method) of `source` without timeout=."""
    tree = ast.parse(source)
    sessions = session_names(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in HTTP_VERBS:
            continue
        receiver = node.func.value
        through_requests = dotted(receiver) == "requests"
        through_session = last_name(receiver) in sessions
        if not (through_requests or through_session):
            continue
        # `**options` may carry a timeout, but nobody could tell: it must be written out.
        if not any(keyword.arg == "timeout" for keyword in node.keywords):
            yield f"{where}:{node.lineno}: {ast.unparse(node.func)}(…) without timeout="


def test_every_requests_call_passes_a_timeout() -> None:
    offenders = [
        line
        for path in checked_files()
        for line in calls_without_timeout(path.read_text(encoding="utf-8"), rel(path))
    ]
    assert offenders == []


# -- rule 2: XML only through the hardened parser ---------------------------------------------


def raw_xml_parsing(source: str, where: str = "") -> Iterator[str]:
    """Every XML parse call, parser construction or XML parser module import of `source`."""
    tree = ast.parse(source)
    lxml_names = set()  # names that are lxml.etree (`from lxml import etree as ET`)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module == "lxml":
                lxml_names.update(a.asname or a.name for a in node.names if a.name == "etree")
            elif module == "lxml.etree":
                for alias in node.names:
                    if alias.name in XML_PARSE_CALLS:
                        yield f"{where}:{node.lineno}: from lxml.etree import {alias.name}"
            elif module.startswith(XML_PARSER_MODULES) and module != "xml.sax.saxutils":
                yield f"{where}:{node.lineno}: from {module} import …"
            elif module == "xml" and any(a.name in ("dom", "etree", "sax") for a in node.names):
                yield f"{where}:{node.lineno}: from xml import …"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lxml.etree":
                    lxml_names.add(alias.asname or "lxml.etree")
                elif alias.name.startswith(XML_PARSER_MODULES) and alias.name != "xml.sax.saxutils":
                    yield f"{where}:{node.lineno}: import {alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = dotted(node.func.value)
            if receiver in lxml_names | {"lxml.etree"} and node.func.attr in XML_PARSE_CALLS:
                yield f"{where}:{node.lineno}: {receiver}.{node.func.attr}(…)"


def test_xml_is_parsed_only_by_the_hardened_module() -> None:
    offenders = [
        line
        for path in checked_files()
        if rel(path) != HARDENED_XML
        for line in raw_xml_parsing(path.read_text(encoding="utf-8"), rel(path))
    ]
    assert offenders == []


# -- rule 3: Jinja only sandboxed ------------------------------------------------------------


def unsandboxed_jinja(source: str, where: str = "") -> Iterator[str]:
    """Every non-sandboxed Jinja environment or template `source` builds, or renders a string."""
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("jinja2", "jinja2.nativetypes"):
            for alias in node.names:
                if alias.name in JINJA_UNSANDBOXED:
                    imported.add(alias.asname or alias.name)
                    yield f"{where}:{node.lineno}: from {node.module} import {alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        if name in imported or (
            name.startswith("jinja2.") and name.rpartition(".")[2] in JINJA_UNSANDBOXED
        ):
            yield f"{where}:{node.lineno}: {name}(…)"
        elif name.rpartition(".")[2] == "render_template_string":
            yield f"{where}:{node.lineno}: {name}(…) renders a string with Flask's environment"


def test_jinja_is_only_sandboxed() -> None:
    offenders = [
        line
        for path in checked_files()
        for line in unsandboxed_jinja(path.read_text(encoding="utf-8"), rel(path))
    ]
    assert offenders == []


# -- rule 4: secrets are compared only in constant time ------------------------------------


def _names_a_secret(node: ast.AST) -> bool:
    """Whether an operand is, or is computed by, something named like a secret.

    A name or attribute (`signature`, `row.token_sha256`), a call (`token_hash(x)`) or an item
    (`headers["X-Hook-Signature"]` is not: only names count, not what a string literal says).
    """
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Subscript):
        node = node.value
    name = last_name(node)
    return bool(name) and bool(SECRET_WORD.search(name))


def _literal(node: ast.AST) -> bool:
    """A literal, or a module constant in capitals (TOKEN_DATA, SIGNATURE_HEADER): a literal by
    another name."""
    if isinstance(node, ast.Constant):
        return True
    name = last_name(node)
    return bool(name) and name.isupper()


def secret_comparisons(source: str, where: str = "") -> Iterator[str]:
    """Every `==` / `!=` of `source` with an operand named like a secret.

    Not counted:
    - A comparison with a literal or a constant in capitals (`signature == ""`, Jinja's lexer
      `token.type != TOKEN_DATA`): it tells nothing about a secret's value but whether it is
      that literal.
    - A comparison inside .where()/.filter() (SQLAlchemy): SQL, not Python. The database looks a
      stored SHA-256 of a token up by the hash of the presented one; the time that takes reveals
      nothing usable about the token (a preimage of a hash), so a lookup is no timing oracle.
    """
    tree = ast.parse(source)
    in_sql: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CLAUSES
        ):
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                in_sql.update(id(sub) for sub in ast.walk(argument))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or id(node) in in_sql:
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if not isinstance(op, ast.Eq | ast.NotEq):
                continue
            if _literal(left) or _literal(right):
                continue
            if _names_a_secret(left) or _names_a_secret(right):
                yield f"{where}:{node.lineno}: {ast.unparse(node)}"


def test_secrets_are_compared_only_in_constant_time() -> None:
    offenders = [
        line
        for path in checked_files()
        for line in secret_comparisons(path.read_text(encoding="utf-8"), rel(path))
    ]
    assert offenders == []


# -- the rules see what they should ----------------------------------------------------------


def test_the_timeout_rule_sees_what_it_should() -> None:
    bad = """
import requests
requests.get(url)
requests.request("POST", url, json={})
s = requests.Session()
s.post(url, data=b"")
self.http = session or requests.Session()
self.http.put(url)
def f(client: requests.Session):
    client.delete(url)
with requests.Session() as http:
    http.head(url)
requests.post(url, **options)
"""
    good = """
import requests
requests.get(url, timeout=5)
s = requests.Session()
s.post(url, timeout=(3, 10))
session.get(Model, 1)
db.session.get(Alert, 2)
flask.session.get("user")
headers.get("Authorization")
"""
    assert len(list(calls_without_timeout(bad))) == 7
    assert list(calls_without_timeout(good)) == []


def test_the_xml_rule_sees_what_it_should() -> None:
    bad = """
from lxml import etree
from lxml import etree as ET
import lxml.etree
from lxml.etree import fromstring
import xml.etree.ElementTree as ElementTree
from xml.dom import minidom
import xml.sax
from xml.parsers import expat
etree.fromstring(data)
etree.parse("file.xml")
ET.XML(text)
etree.XMLParser(resolve_entities=True)
lxml.etree.iterparse(stream)
"""
    good = """
from lxml import etree
from xml.sax.saxutils import escape
from connector.safe_xml import parse_untrusted
root = parse_untrusted(data)
etree.tostring(root)
etree.SubElement(root, "x")
json.parse(text)
"""
    found = list(raw_xml_parsing(bad))
    assert len(found) == 10, found
    assert list(raw_xml_parsing(good)) == []


def test_the_jinja_rule_sees_what_it_should() -> None:
    bad = """
import jinja2
from jinja2 import Environment, Template
jinja2.Environment(loader=loader)
Environment()
Template("{{ x }}")
jinja2.Template(text)
flask.render_template_string(text)
"""
    good = """
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2 import StrictUndefined
ImmutableSandboxedEnvironment(undefined=StrictUndefined)
SandboxedEnvironment()
render_template("admin/index.html")
"""
    found = list(unsandboxed_jinja(bad))
    assert len(found) == 7, found
    assert list(unsandboxed_jinja(good)) == []


def test_the_comparison_rule_sees_what_it_should() -> None:
    bad = """
if signature == expected: pass
if expected != row.token_sha256: pass
if token_hash(token) == stored: pass
if presented == self.secret: pass
ok = hmac_value == mac
ok = digest == other
ok = password == given
ok = api_key != key
ok = a == b == signatures[0]
"""
    good = """
if hmac.compare_digest(signature, expected): pass
if secrets.compare_digest(token, stored): pass
if signature == "": pass
if token.type != "name": pass
if token.type != TOKEN_DATA: pass
if len(presented) == 32: pass
select(Credential).where(Credential.token_sha256 == token_hash(token))
query.filter(ApiToken.token_sha256 == digest)
if scheme == other_scheme: pass
if headers["X-Hook-Signature"] == value: pass
"""
    found = list(secret_comparisons(bad))
    assert len(found) == 9, found
    assert list(secret_comparisons(good)) == []
