"""The one hardened XML parser every XML read uses: rendered payloads, SOAP answers, the sandbox.

No entity is resolved, no DTD loaded, no network touched, no huge tree built, and a document
with a DOCTYPE is refused outright ("A SOAP message MUST NOT contain a Document Type Declaration",
SOAP 1.1 §3). Reference: ../shared/reference/reliability-security.md §4.6.
"""

from __future__ import annotations

from lxml import etree


class XmlRefused(ValueError):
    """XML that is not well-formed, or carries a DOCTYPE; `position` is (line, column) if known."""

    def __init__(self, message: str, position: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.position = position


class DoctypeRefused(XmlRefused):
    """Well-formed XML that carries a DOCTYPE, which is never accepted."""


def hardened_parser(*, keep_processing_instructions: bool = False) -> etree.XMLParser:
    """A new hardened parser; one per parse, because lxml parsers are not thread-safe.

    Processing instructions are dropped unless kept: a rendered payload keeps them, as the
    admin wrote them; what comes from outside has no use for them.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=not keep_processing_instructions,
    )


def parse_untrusted(data: bytes, *, keep_processing_instructions: bool = False) -> etree._Element:
    """Parse `data` with `hardened_parser`; XmlRefused if it is malformed or has a DOCTYPE."""
    parser = hardened_parser(keep_processing_instructions=keep_processing_instructions)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise XmlRefused(f"the XML is not well-formed ({e.msg})", e.position) from e
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        raise DoctypeRefused("a DOCTYPE is not allowed")
    return root
