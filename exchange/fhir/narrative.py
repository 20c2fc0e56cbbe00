"""A Narrative's XHTML, held to R4's rules (narrative.html, invariants txt-1 and txt-2).

A narrative is shown to people: in a clinic's record viewer, the portal, a printed
summary. Script in it, a form that posts elsewhere, a frame or an object, an ``onclick``
or a ``javascript:`` link would run in whoever's browser shows the record. R4 allows only
the basic HTML formatting elements and attributes of its txt-1 lists, in one ``div`` of
the XHTML namespace, well-formed, with some content (txt-2).

Parsed with the standard library's expat, namespaces on. A document type, an entity
declaration or a processing instruction is refused before it is expanded: no entity can
grow the text, and no external one is ever fetched. The elements and attributes allowed
are the specification's lists, judged on the parsed tree, never on the text by pattern;
a URL is judged by its scheme as a browser reads it, a style by the few constructs that
make CSS fetch or run something.
"""

import xml.parsers.expat
from collections.abc import Callable
from typing import Any

XHTML = "http://www.w3.org/1999/xhtml"
_XML = "http://www.w3.org/XML/1998/namespace"
_SEP = " "  # expat joins a namespace and a local name with this

# txt-1: the elements and attributes R4 allows (HTML 4.0 chapters 7-11 and 15, ``a``,
# ``img``, and style attributes). script, form, input, iframe, object, embed, base, link,
# meta, style and every event attribute (onclick, onload, ...) are outside them.
ELEMENTS = frozenset({
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code",
    "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var"})
ATTRIBUTES = frozenset({
    "abbr", "accesskey", "align", "alt", "axis", "bgcolor", "border", "cellhalign",
    "cellpadding", "cellspacing", "cellvalign", "char", "charoff", "charset", "cite",
    "class", "colspan", "compact", "coords", "dir", "frame", "headers", "height", "href",
    "hreflang", "hspace", "id", "lang", "longdesc", "name", "nowrap", "rel", "rev",
    "rowspan", "rules", "scope", "shape", "span", "src", "start", "style", "summary",
    "tabindex", "title", "type", "valign", "value", "vspace", "width"})
# Attributes whose value a browser follows as a URL.
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc"})
# A link goes to a web or ftp page, a mail address, a phone, a name, or within the record; an
# image comes from the web or inline. Anything else (javascript:, vbscript:, data: text,
# file:) is refused.
_LINK_SCHEMES = frozenset({"http", "https", "ftp", "mailto", "tel", "urn"})
_IMAGE_DATA = ("data:image/png", "data:image/jpeg", "data:image/gif", "data:image/webp")
# Style may set how text looks; these make it fetch, run or bind something instead.
_STYLE_ACTIVE = ("url(", "expression(", "javascript:", "vbscript:", "behavior:",
                 "-moz-binding", "@import", "\\")


class NarrativeError(Exception):
    """Why a narrative is refused, in the exchange's words (never a piece of it)."""


def narrative_violation(xhtml: str) -> str | None:
    """Why ``xhtml`` is not a narrative R4 allows, or None when it is one."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=_SEP)
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True  # one call per run of text, not one per line or entity
    parser.StartDoctypeDeclHandler = _refuse("A narrative may not declare a document type.")
    parser.EntityDeclHandler = _refuse("A narrative may not declare entities.")
    parser.ProcessingInstructionHandler = _refuse(
        "A narrative may not hold processing instructions.")
    parser.ExternalEntityRefHandler = _refuse("A narrative may not refer to external entities.")
    checker = _Checker(parser)
    parser.StartElementHandler = checker.root
    parser.CharacterDataHandler = checker.text
    try:
        parser.Parse(xhtml, True)
    except NarrativeError as refused:
        return str(refused)
    except xml.parsers.expat.ExpatError:
        return "A narrative must be well-formed XHTML."
    except (ValueError, UnicodeError):  # a lone surrogate cannot be encoded for expat
        return "A narrative must be well-formed XHTML."
    if not checker.content:
        return "A narrative must have some content: text or an image (txt-2)."
    return None


def _refuse(message: str) -> Callable[..., Any]:
    def handler(*_: Any) -> Any:
        raise NarrativeError(message)

    return handler


# Names as expat reports them with namespaces on: "namespace local".
_ROOT = f"{XHTML}{_SEP}div"
_QUALIFIED = frozenset(f"{XHTML}{_SEP}{e}" for e in ELEMENTS)
_IMG = f"{XHTML}{_SEP}img"


class _Checker:
    """The handlers of one parse. expat itself refuses a second root element, so after
    the root every element is inside it."""

    __slots__ = ("content", "parser")

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.content = False

    def root(self, name: str, attributes: dict[str, str]) -> None:
        if name != _ROOT:
            raise NarrativeError("A narrative must be one div element in the XHTML "
                                 "namespace (xmlns=\"http://www.w3.org/1999/xhtml\").")
        self.parser.StartElementHandler = self.element
        self.element(name, attributes)

    def element(self, name: str, attributes: dict[str, str]) -> None:
        if name not in _QUALIFIED:
            raise NarrativeError(
                "A narrative may hold only the basic HTML formatting elements R4 allows "
                "(txt-1): no script, form, input, iframe, object, embed, base, link, meta or "
                "style, and no element outside the XHTML namespace.")
        if attributes:
            image = name == _IMG
            for attribute, value in attributes.items():
                _check_attribute(attribute, value, image=image)
                if image and attribute == "src":
                    self.content = True

    def text(self, data: str) -> None:
        # txt-2 holds once anything shows; the rest of the text need not be looked at.
        if not self.content and not data.isspace():
            self.content = True


def _check_attribute(name: str, value: str, *, image: bool) -> None:
    namespace, _, local = name.rpartition(_SEP)
    if namespace == _XML and local == "lang":
        return  # xml:lang, as HL7's own narratives carry beside lang
    if namespace or local not in ATTRIBUTES:
        raise NarrativeError("A narrative may carry only the attributes R4 allows (txt-1): "
                             "no event attributes such as onclick, none of another "
                             "namespace.")
    if local in _URL_ATTRIBUTES and not _safe_url(value, image=image and local == "src"):
        raise NarrativeError("A narrative's links and images must be http(s), ftp, mailto, "
                             "tel, urn or within the record: no javascript: or other active "
                             "URL.")
    if local == "style" and any(part in value.lower() for part in _STYLE_ACTIVE):
        raise NarrativeError("A narrative's style may set how text looks, not fetch, run "
                             "or bind anything (no url(), expression() or script).")


def _safe_url(value: str, *, image: bool) -> bool:
    # Browsers drop whitespace and control characters anywhere in a URL's scheme
    # ("java\tscript:"), so the scheme is read as they read it.
    compact = "".join(ch for ch in value if ch > " " and ch != "\x7f").lower()
    scheme, colon, _ = compact.partition(":")
    if not colon or any(ch in scheme for ch in "/?#"):
        return True  # relative, or a fragment: within the record or the exchange
    if image and compact.startswith(_IMAGE_DATA):
        return True
    return scheme in _LINK_SCHEMES
