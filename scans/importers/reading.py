"""Safe reading of the two shapes every format comes in: JSON and XML.

JSON: a whole document (Trivy, SSLyze, SARIF) or one document per line (Nuclei
JSONL), parsed with orjson when it is installed, else the standard library with the
same strictness (no NaN, no infinities, no lone surrogates). Errors say line and
column; a document nested past the parser's depth limit is refused, not a crash.

XML: expat through defusedxml, fed in chunks so a report of any size streams.
Entity declarations and external references are refused; the only DOCTYPE allowed is
the bare ``<!DOCTYPE nmaprun>`` nmap writes (no internal subset, no system or public
id), so nothing is ever expanded or fetched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from scans.importers.base import ImportContext, ImportRejected

try:
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None

XML_MAX_DEPTH = 256
XML_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# -- JSON -----------------------------------------------------------------------------


def load_json(data: bytes, context: ImportContext, *, line: int | None = None) -> Any:
    """Parse one JSON document; refuse it with line and column when it is not valid."""
    if data.startswith(_BOM):
        data = data[3:]
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            # orjson refuses integers beyond 64 bits, which SSLyze writes (RSA moduli);
            # the standard library reads those and words the error for anything else.
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise context.reject(f"not UTF-8 ({exc.reason})", line=line, offset=exc.start) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise _json_rejection(context, exc, line) from None
    except RecursionError:
        raise context.reject("not valid JSON (nested too deeply)", line=line) from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise context.reject(f"not valid JSON ({exc})", line=line) from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise context.reject("not valid JSON (unpaired surrogate in a string)", line=line) from None
    return value


def _refuse_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise json.JSONDecodeError(f"number {text[:20]} is out of range", text, 0)
    return value


def _json_rejection(context: ImportContext, exc: json.JSONDecodeError, line: int | None) -> ImportRejected:
    reason = exc.msg
    # orjson's messages repeat the position; keep only the cause.
    reason = reason.split(": line ")[0]
    if line is None:
        return context.reject(f"not valid JSON ({reason})", line=exc.lineno, column=exc.colno)
    return context.reject(f"not valid JSON ({reason})", line=line, column=exc.colno)


def iter_json_lines(stream: BinaryIO, context: ImportContext) -> Iterator[tuple[int, Any]]:
    """Yield (line number, document) for each non-blank line; ``context.line`` follows along."""
    for number, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        context.line = number
        yield number, load_json(raw, context, line=number)


_KINDS = {dict: "an object", list: "an array", str: "text", bool: "true/false", int: "a number", float: "a number"}


def kind(value: Any) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


class Fields:
    """Typed reads from one JSON object, refusing wrong types with the JSON path.

    Missing keys and nulls read as empty, because tools omit and null fields freely;
    a value of the wrong kind (an object where text belongs) refuses the file.
    The path is only spelled out when a file is refused: reads stay cheap on the
    100,000-line files where every microsecond per record counts.
    """

    __slots__ = ("obj", "context", "_parent", "_key")

    def __init__(self, obj: Any, path: str | Fields, context: ImportContext, key: str = "") -> None:
        self.context = context
        self._parent = path
        self._key = key
        if obj.__class__ is not dict:
            raise context.reject(f"expected an object, found {kind(obj)}", path=self.path)
        self.obj = obj

    @property
    def path(self) -> str:
        parent = self._parent if isinstance(self._parent, str) else self._parent.path
        return f"{parent}{self._key}"

    def _wrong(self, key: str, expected: str, value: Any) -> ImportRejected:
        return self.context.reject(f"{key} should be {expected}, not {kind(value)}", path=f"{self.path}.{key}")

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def text(self, key: str) -> str:
        value = self.obj.get(key)
        if value is None:
            return ""
        if value.__class__ is str:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise self._wrong(key, "text", value)

    def number(self, key: str) -> float | None:
        value = self.obj.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise self._wrong(key, "a number", value)

    def integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            digits = value.strip()
            if digits.isascii() and digits.isdigit() and len(digits) <= 18:
                return int(digits)
        raise self._wrong(key, "a whole number", value)

    def flag(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self._wrong(key, "true or false", value)

    def array(self, key: str) -> list:
        value = self.obj.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        raise self._wrong(key, "an array", value)

    def child(self, key: str) -> Fields:
        value = self.obj.get(key)
        return Fields({} if value is None else value, self, self.context, f".{key}")

    def children(self, key: str) -> Iterator[Fields]:
        for index, item in enumerate(self.array(key)):
            yield Fields(item, self, self.context, f".{key}[{index}]")

    def texts(self, key: str) -> list[str]:
        """Text or an array of text (tools switch between the two across versions)."""
        value = self.obj.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            out = []
            for index, item in enumerate(value):
                if isinstance(item, str):
                    out.append(item)
                elif isinstance(item, (int, float)) and not isinstance(item, bool):
                    out.append(str(item))
                elif item is not None:
                    raise self.context.reject(
                        f"{key} should hold text, not {kind(item)}", path=f"{self.path}.{key}[{index}]"
                    )
            return out
        raise self._wrong(key, "text or an array of text", value)


# -- XML ------------------------------------------------------------------------------


class _DoctypeGuard(DefusedXMLParser):
    def __init__(self, target: TreeBuilder) -> None:
        super().__init__(target=target, forbid_dtd=False, forbid_entities=True, forbid_external=True)
        self.parser.StartDoctypeDeclHandler = self._doctype_declared

    @staticmethod
    def _doctype_declared(name: str, sysid: str | None, pubid: str | None, has_internal_subset: int) -> None:
        if sysid or pubid or has_internal_subset:
            raise _Refused("document type definitions are not accepted (DTD with declarations or an external id)")


class _Refused(Exception):
    """Raised inside expat callbacks; turned into ImportRejected with expat's position."""


class _EventBuilder(TreeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Element]] = []
        self.depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        if self.depth > XML_MAX_DEPTH:
            raise _Refused(f"elements nested deeper than {XML_MAX_DEPTH} levels")
        element = super().start(tag, attrs)
        self.events.append(("start", element))
        return element

    def end(self, tag: str) -> Element:
        self.depth -= 1
        element = super().end(tag)
        self.events.append(("end", element))
        return element


def iter_xml(stream: BinaryIO, context: ImportContext) -> Iterator[tuple[str, Element, list[Element]]]:
    """Yield ("start" | "end", element, open ancestors) while streaming the document.

    On "end" the element is complete; the caller may detach it from its parent
    (``ancestors[-1].remove(element)``) once read, which keeps memory flat.
    """
    builder = _EventBuilder()
    parser = _DoctypeGuard(builder)
    expat = parser.parser
    stack: list[Element] = []
    seen_anything = False

    def refused(reason: str) -> ImportRejected:
        return context.reject(reason, line=expat.CurrentLineNumber, column=expat.CurrentColumnNumber + 1)

    def drain() -> Iterator[tuple[str, Element, list[Element]]]:
        events, builder.events = builder.events, []
        for event, element in events:
            if event == "start":
                yield event, element, stack
                stack.append(element)
            else:
                stack.pop()
                yield event, element, stack

    while True:
        chunk = stream.read(XML_CHUNK)
        try:
            if chunk:
                seen_anything = seen_anything or bool(chunk.strip())
                parser.feed(chunk)
            elif not seen_anything:
                raise context.reject("empty file: no XML document")
            else:
                parser.close()
        except ParseError as exc:
            line, column = exc.position
            reason = str(exc).split(": line ")[0]
            raise context.reject(f"invalid XML: {reason}", line=line, column=column + 1) from None
        except _Refused as exc:
            raise refused(str(exc)) from None
        except DefusedXmlException as exc:
            raise refused(f"entity declarations and external references are not accepted ({type(exc).__name__})")
        except UnicodeError as exc:
            raise refused(f"undecodable text ({exc})") from None
        except LookupError as exc:
            raise refused(f"unknown text encoding ({exc})") from None
        yield from drain()
        if not chunk:
            return


def text_of(element: Element | None, path: str = "") -> str:
    """Stripped text of ``element`` (or of its child at ``path``); "" when absent."""
    if element is None:
        return ""
    if path:
        element = element.find(path)
        if element is None:
            return ""
    return (element.text or "").strip()
