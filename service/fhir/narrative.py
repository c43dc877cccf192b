"""Narrative XHTML: well-formed, in the XHTML namespace, and inert.

``text.div`` is rendered by partner systems and the web app, so markup that runs script
there is a stored-XSS path. R4 narrative.html#xhtml limits it to "the basic html
formatting elements and attributes described in chapters 7-11 (except section 4 of
chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either name or href), images
and internally contained style attributes" (invariant txt-1), with some non-whitespace
content (txt-2); no scripts, forms, frames, objects, base/link, head or body. The div is
parsed with a real XML parser (defusedxml: no DTDs, no entity expansion) and checked
against an allow-list, so anything not named here is refused.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

# defusedxml ships no type stubs (types-defusedxml is not a dependency); fromstring returns
# a stdlib Element, annotated where it is used.
import defusedxml  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from service.fhir._walk import members

# (location, what is wrong): never the markup itself, which may be clinical text.
Problem = tuple[str, str]

XHTML = "http://www.w3.org/1999/xhtml"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# HTML 4.01 chapters 7-11 (not 9.4, ins/del) and 15 (without deprecated elements), plus a and img.
_ELEMENTS = frozenset(
    (
        *("div", "span", "p", "br", "hr", "address", "bdo"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
        *("em", "strong", "dfn", "code", "samp", "kbd", "var", "cite", "abbr", "acronym"),
        *("blockquote", "q", "sub", "sup", "pre"),
        *("ul", "ol", "li", "dl", "dt", "dd"),
        *("table", "caption", "thead", "tfoot", "tbody", "colgroup", "col", "tr", "th", "td"),
        *("tt", "i", "b", "big", "small"),
        *("a", "img", "map", "area"),
    )
)

# Core, i18n and presentational attributes of those chapters; never event handlers (on*).
_ATTRIBUTES = frozenset(
    (
        *("id", "class", "style", "title", "lang", "dir", "accesskey", "tabindex", _XML_LANG),
        *("align", "valign", "char", "charoff", "width", "height", "span", "border", "summary", "frame"),
        *("rules", "cellspacing", "cellpadding", "abbr", "axis", "headers", "scope", "rowspan", "colspan"),
        *("nowrap", "bgcolor", "start", "type", "value", "compact", "clear", "noshade", "size"),
        *("name", "href", "hreflang", "rel", "rev", "charset", "shape", "coords", "nohref", "target"),
        *("src", "alt", "longdesc", "usemap", "ismap", "hspace", "vspace", "cite", "datetime"),
    )
)
_URL_ATTRIBUTES = frozenset({"href", "src", "longdesc", "usemap", "cite"})
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "urn"})
# An inline image (a narrative may embed one rather than fetch it); not SVG, which can hold script.
_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp);", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
# Browsers ignore whitespace and control characters inside a scheme ("java\tscript:").
_IGNORED_IN_URL = re.compile(r"[\x00-\x20]")
_UNSAFE_STYLE = re.compile(
    r"expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding|@import|url\s*\("
)


def _url_problem(element: str, attribute: str, value: str) -> str | None:
    compact = _IGNORED_IN_URL.sub("", value).lower()
    scheme = _SCHEME.match(compact)
    if scheme is None:
        return None  # relative, or a fragment (#id of a contained resource)
    if scheme.group(1) in _SAFE_SCHEMES:
        return None
    if element == "img" and attribute == "src" and _DATA_IMAGE.match(compact):
        return None
    return f"the {attribute} of <{element}> uses the URL scheme '{scheme.group(1)}:', which is not allowed"


def _element_problems(root: Element) -> list[str]:
    problems: list[str] = []
    for node in root.iter():
        if not isinstance(node.tag, str):  # comments and processing instructions carry no markup
            continue
        namespace, _, name = node.tag[1:].partition("}") if node.tag.startswith("{") else ("", "", node.tag)
        if namespace != XHTML:
            problems.append(f"<{name}> is not in the XHTML namespace")
            continue
        if name not in _ELEMENTS:
            problems.append(f"<{name}> is not allowed in a narrative")
            continue
        for attribute, value in node.attrib.items():
            if attribute not in _ATTRIBUTES:
                problems.append(f"the attribute '{attribute}' is not allowed on <{name}>")
            elif attribute in _URL_ATTRIBUTES and (bad := _url_problem(name, attribute, value)):
                problems.append(bad)
            elif attribute == "style" and _UNSAFE_STYLE.search(value.lower()):
                problems.append(f"the style of <{name}> holds script, an import or an external URL")
    return problems


def div_problems(div: str) -> list[str]:
    """What is wrong with one Narrative.div, or nothing."""
    try:
        root: Element = fromstring(div, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, defusedxml.DefusedXmlException, ValueError):
        return ["is not well-formed XHTML (or uses a DTD or entities other than XML's own)"]
    if root.tag != f"{{{XHTML}}}div":
        return ["must be a <div> element in the XHTML namespace (http://www.w3.org/1999/xhtml)"]
    problems = _element_problems(root)
    # txt-2: some non-whitespace content (an image counts).
    if not "".join(root.itertext()).strip() and root.find(f".//{{{XHTML}}}img") is None:
        problems.append("must have some non-whitespace content (txt-2)")
    return problems


def narrative_problems(resource: dict[str, Any]) -> list[Problem]:
    """Every Narrative in the resource: its own text, contained resources', and any other
    Narrative-typed element (Composition.section.text)."""
    problems: list[Problem] = []
    for where, key, value in members(resource):
        if key == "text" and isinstance(value, dict) and "div" in value:
            div = value["div"]
            found = div_problems(div) if isinstance(div, str) else ["must be a string"]
            problems.extend((f"{where}.div", p) for p in found)
    return sorted(problems)
