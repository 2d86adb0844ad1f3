"""Byte-compatible emulation of Go's ``sigs.k8s.io/yaml.Marshal`` for the instance ID.

Upstream's instance ID hashes the ISC ``modelServerConfig`` as rendered by
``sigs.k8s.io/yaml`` (JSON, then re-emitted by the go-yaml v2 encoder), see
docs/protocol.md, "Identity hashes".  Reproducing those bytes lets each implementation adopt the
other's sleeping instances after a migration, so this module re-implements the
parts of go-yaml v2 that such a document can reach: block mappings with string
keys, string and integer scalars, the encoder's "natural" key order, the
scalar-style choice (plain, single-quoted, double-quoted, literal) with YAML
1.1 implicit-type detection, and line folding at 80 columns.  It also
reproduces what the JSON round trip does to strings and go-yaml's own quirks:
a raw NEL (U+0085) is folded like a line break, a value that starts with a BOM
has every character escaped, and strings Go cannot marshal (raw control
characters, NEL in a key) are refused with ``ValueError``.  Vectors produced by
Go (``tests/unit/crds/testdata/instance_id_vectors``) check all of this.

Known approximation: Go's ``time.Parse`` is emulated with regular expressions
for the four timestamp layouts go-yaml recognises; exotic inputs that Go parses
differently would only change the quoting of such a value.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import itertools
import math
import re
import unicodedata
from collections.abc import Mapping

__all__ = ["Value", "marshal", "natural_less"]

Value = str | int | Mapping[str, "Value"]
"""What ``marshal`` accepts: strings, integers and string-keyed mappings of those."""

_BEST_WIDTH = 80
_BEST_INDENT = 2
_MAX_SIMPLE_KEY = 128
_INT64 = 2**63
_UINT64 = 2**64
_BREAKS = "\r\n\x85\u2028\u2029"

_RESOLVE_MAP: dict[str, str] = {}
for _tag, _words in (
    ("bool", ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")),
    ("bool", ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")),
    ("null", ("", "~", "null", "Null", "NULL")),
    ("float", (".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF")),
    ("merge", ("<<",)),
):
    for _word in _words:
        _RESOLVE_MAP[_word] = _tag

_HINTS: dict[str, str] = {"+": "S", "-": "S", ".": "."}
_HINTS.update(dict.fromkeys("0123456789", "D"))
_HINTS.update(dict.fromkeys("yYnNtTfFoO~", "M"))

_YAML_STYLE_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_BASE60_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_DATE = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_CLOCK = r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?"
_TIMESTAMPS = (
    re.compile(rf"^{_DATE}[Tt]{_CLOCK}(?:Z|[+-]\d{{2}}:\d{{2}})$"),
    re.compile(rf"^{_DATE} {_CLOCK}$"),
    re.compile(rf"^{_DATE}$"),
)


# --- implicit typing (go-yaml v2 resolve.go) ------------------------------------------------


def _go_parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)``, falling back to ``ParseUint``; ``None`` if neither accepts it."""
    sign, digits = "", text
    if digits[:1] in ("+", "-"):
        sign, digits = digits[0], digits[1:]
    base = 10
    if len(digits) > 1 and digits[0] == "0":
        prefix = digits[1].lower()
        if prefix in "xbo":
            base = {"x": 16, "b": 2, "o": 8}[prefix]
            digits = digits[2:]
        else:
            base = 8
            digits = digits[1:]
    allowed = "0123456789abcdef"[:base]
    if not digits or any(char.lower() not in allowed for char in digits):
        return None
    value = int(digits, base)
    if sign == "-":
        value = -value
    if -_INT64 <= value < _INT64 or (not sign and value < _UINT64):
        return value
    return None


def _go_float_ok(text: str) -> bool:
    try:
        return not math.isinf(float(text))
    except ValueError:
        return False


def _is_timestamp(text: str) -> bool:
    if len(text) < 5 or not text[:4].isdigit() or not text[:4].isascii() or text[4] != "-":
        return False
    for layout in _TIMESTAMPS:
        match = layout.match(text)
        if match is None:
            continue
        year, month, day = (int(part) for part in match.groups()[:3])
        try:
            datetime.date(year, month, day)
        except ValueError:
            continue
        clock = match.groups()[3:6]
        if clock and clock[0] is not None:
            hour, minute, second = (int(part) for part in clock)
            if hour > 23 or minute > 59 or second > 59:
                continue
        return True
    return False


def _resolves_to_string(text: str) -> bool:
    """Whether go-yaml would read ``text``, written plain, back as a string (``resolve`` in resolve.go)."""
    hint = _HINTS.get(text[0]) if text else "N"
    if hint is None:
        return True
    if text in _RESOLVE_MAP:
        return False
    if hint == ".":
        return not (_DOT_FLOAT.match(text) and _go_float_ok(text))
    if hint in ("D", "S"):
        plain = text.replace("_", "")
        is_float = _YAML_STYLE_FLOAT.match(plain) is not None and _go_float_ok(plain)
        return not (_is_timestamp(text) or _go_parse_int(plain) is not None or is_float)
    return True


def _is_base60_float(text: str) -> bool:
    if not text or not (text[0] in "+-" or "0" <= text[0] <= "9") or ":" not in text:
        return False
    return _BASE60_FLOAT.match(text) is not None


# --- what the JSON round trip does to strings (encoding/json, then go-yaml's scanner) -------------


def _unencodable(text: str) -> str | None:
    """Return the first character go-yaml's reader refuses after ``encoding/json`` left it raw, if any."""
    for char in text:
        code = ord(char)
        if code == 0x7F or (0x80 <= code <= 0x9F and code != 0x85) or code in (0xFFFE, 0xFFFF):
            return char
        if 0xD800 <= code <= 0xDFFF:
            return char
    return None


def _as_go_reads_it(text: str) -> str:
    """Return ``text`` as ``sigs.k8s.io/yaml`` sees it after marshalling it to JSON and parsing that as YAML.

    ``encoding/json`` escapes every character YAML would treat as white space or a line break, except
    the space and NEL (U+0085).  go-yaml's double-quoted scanner then folds a raw NEL like a line break:
    blanks before it are dropped, blanks after it are skipped, one break becomes a space and each further
    break a newline.  Raises ``ValueError`` where go-yaml would refuse the document.
    """
    bad = _unencodable(text)
    if bad is not None:
        raise ValueError(f"{text!r} contains {bad!r}, which sigs.k8s.io/yaml cannot encode")
    if "\x85" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] not in " \x85":
            out.append(text[i])
            i += 1
        if i >= n:
            break
        whitespaces: list[str] = []
        breaks = 0
        while i < n and text[i] in " \x85":
            if text[i] == " ":
                if not breaks:
                    whitespaces.append(" ")
            else:
                breaks += 1
                # at the start of a line, "---" or "..." before a blank is a document marker (the string's
                # closing quote is not a blank, so the end of the string does not count)
                if text.startswith(("---", "..."), i + 1) and i + 4 < n and text[i + 4] in " \x85":
                    raise ValueError(f"{text!r} contains a document marker after a line break")
            i += 1
        if breaks:
            out.append(" " if breaks == 1 else "\n" * (breaks - 1))
        else:
            out.extend(whitespaces)
    return "".join(out)


def _through_json(document: Mapping[str, Value]) -> dict[str, Value]:
    """Return ``document`` with every string as go-yaml reads it back (keys in Go's JSON order, later wins)."""
    result: dict[str, Value] = {}
    for key in sorted(document):
        value = document[key]
        if isinstance(value, Mapping):
            converted: Value = _through_json(value)
        elif isinstance(value, str):
            converted = _as_go_reads_it(value)
        else:
            converted = value
        if "\x85" in key:
            raise ValueError(f"key {key!r} contains a line break (U+0085), which sigs.k8s.io/yaml cannot encode")
        result[_as_go_reads_it(key)] = converted
    return result


# --- key order (go-yaml v2 sorter.go) ---------------------------------------------------------


def _is_letter(char: str) -> bool:
    return unicodedata.category(char).startswith("L")


def _is_digit(char: str) -> bool:
    return unicodedata.category(char) == "Nd"


def _wrap64(value: int) -> int:
    return (value + _INT64) % _UINT64 - _INT64


def natural_less(a: str, b: str) -> bool:
    """go-yaml v2's ``keyList.Less`` for two string keys: letters by code point, digit runs numerically."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = _is_letter(a[i]), _is_letter(b[i])
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        a_number = b_number = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and _is_digit(a[j]):
                if a[j] != "0":
                    a_number = b_number = 1
                    break
                j -= 1
        a_end = i
        while a_end < len(a) and _is_digit(a[a_end]):
            a_number = _wrap64(a_number * 10 + ord(a[a_end]) - ord("0"))
            a_end += 1
        b_end = i
        while b_end < len(b) and _is_digit(b[b_end]):
            b_number = _wrap64(b_number * 10 + ord(b[b_end]) - ord("0"))
            b_end += 1
        if a_number != b_number:
            return a_number < b_number
        if a_end != b_end:
            return a_end < b_end
        return a[i] < b[i]
    return len(a) < len(b)


def _compare(a: str, b: str) -> int:
    if natural_less(a, b):
        return -1
    if natural_less(b, a):
        return 1
    # Go's own order is unspecified for such ties; fall back to code points so ours is stable.
    return (a > b) - (a < b)


# --- scalar analysis (libyaml emitter, as ported in go-yaml v2) -----------------------------


def _printable(char: str) -> bool:
    code = ord(char)
    return (
        code == 0x0A or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


@dataclasses.dataclass
class _Analysis:
    multiline: bool
    block_plain_allowed: bool
    single_quoted_allowed: bool
    block_allowed: bool


def _has_block_indicator(value: str) -> bool:
    """Whether ``value`` contains a character that would end or change a plain scalar in block context."""
    if value.startswith(("---", "...")):
        return True
    last = len(value) - 1
    for i, char in enumerate(value):
        followed_by_whitespace = i == last or value[i + 1] in " \t"
        preceded_by_whitespace = i == 0 or value[i - 1] in " \t\x00" or value[i - 1] in _BREAKS
        if i == 0 and char in "#,[]{}&*!|>'\"%@`":
            return True
        if i == 0 and char in "?:-" and followed_by_whitespace:
            return True
        if i > 0 and ((char == ":" and followed_by_whitespace) or (char == "#" and preceded_by_whitespace)):
            return True
    return False


def _analyze(value: str) -> _Analysis:
    if not value:
        return _Analysis(multiline=False, block_plain_allowed=True, single_quoted_allowed=True, block_allowed=False)
    special_characters = not all(_printable(char) for char in value)
    line_breaks = any(char in _BREAKS for char in value)
    leading_space, trailing_space = value[0] == " ", value[-1] == " "
    leading_break, trailing_break = value[0] in _BREAKS, value[-1] in _BREAKS
    pairs = list(itertools.pairwise(value))
    break_space = any(a in _BREAKS and b == " " for a, b in pairs)
    space_break = any(a == " " and b in _BREAKS for a, b in pairs)
    block_plain = not (
        leading_space or leading_break or trailing_space or trailing_break or line_breaks or break_space
    ) and not (space_break or special_characters or _has_block_indicator(value))
    single = not (break_space or space_break or special_characters)
    block = not (trailing_space or space_break or special_characters)
    return _Analysis(
        multiline=line_breaks, block_plain_allowed=block_plain, single_quoted_allowed=single, block_allowed=block
    )


_ESCAPES = {
    0x00: "0",
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x1B: "e",
    0x22: '"',
    0x5C: "\\",
    0x85: "N",
    0xA0: "_",
    0x2028: "L",
    0x2029: "P",
}


class _Emitter:
    """The subset of go-yaml v2's emitter state that block mappings of scalars need."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0

    def write_indent(self, indent: int) -> None:
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.put_break()
        while self.column < indent:
            self.put(" ")
        self.whitespace = True
        self.indention = True

    def write_indicator(self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    # scalars -------------------------------------------------------------------------------

    def scalar(self, value: str | int, indent: int, simple_key: bool) -> None:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"cannot marshal {value!r}")
        if isinstance(value, int):
            text, style = str(value), "plain"
        else:
            text = value
            if "\n" in text:
                style = "literal"
            elif _resolves_to_string(text) and not _is_base60_float(text):
                style = "plain"
            else:
                style = "double"
        analysis = _analyze(text)
        if simple_key and analysis.multiline:
            style = "double"
        if style == "plain" and (not analysis.block_plain_allowed or (not text and simple_key)):
            style = "single"
        if style == "single" and not analysis.single_quoted_allowed:
            style = "double"
        if style == "literal" and (not analysis.block_allowed or simple_key):
            style = "double"
        allow_breaks = not simple_key
        {"plain": self.plain, "single": self.single, "double": self.double}.get(style, self._literal_adapter)(
            text, indent, allow_breaks
        )

    def plain(self, value: str, indent: int, allow_breaks: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        spaces = False
        for i, char in enumerate(value):
            if char == " ":
                next_is_space = i + 1 < len(value) and value[i + 1] == " "
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and not next_is_space:
                    self.write_indent(indent)
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                self.indention = False
                spaces = False
        self.whitespace = False
        self.indention = False

    def single(self, value: str, indent: int, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        spaces = breaks = False
        for i, char in enumerate(value):
            if char == " ":
                next_is_space = i + 1 < len(value) and value[i + 1] == " "
                if (
                    allow_breaks
                    and not spaces
                    and self.column > _BEST_WIDTH
                    and 0 < i < len(value) - 1
                    and not next_is_space
                ):
                    self.write_indent(indent)
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.put_break()
                self._write_break(char)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent(indent)
                if char == "'":
                    self.put("'")
                self.put(char)
                self.indention = False
                spaces = breaks = False
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def double(self, value: str, indent: int, allow_breaks: bool) -> None:
        self.write_indicator('"', True, False, False)
        spaces = False
        # go-yaml's is_bom() looks at the start of the value, not at position i: after a leading BOM
        # every character is escaped.
        escape_all = value.startswith("\ufeff")
        for i, char in enumerate(value):
            code = ord(char)
            if escape_all or not _printable(char) or char in _BREAKS or char in '"\\':
                escape = _ESCAPES.get(code)
                if escape is None:
                    if code <= 0xFF:
                        escape = f"x{code:02X}"
                    elif code <= 0xFFFF:
                        escape = f"u{code:04X}"
                    else:
                        escape = f"U{code:08X}"
                self.put("\\" + escape)
                spaces = False
            elif char == " ":
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and i not in (0, len(value) - 1):
                    self.write_indent(indent)
                    if i + 1 < len(value) and value[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def _literal_adapter(self, value: str, indent: int, allow_breaks: bool) -> None:
        del allow_breaks  # literal scalars are never folded
        self.literal(value, indent)

    def literal(self, value: str, indent: int) -> None:
        self.write_indicator("|", True, False, False)
        if value[:1] == " " or value[:1] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), False, False, False)
        chomp = ""
        if value[-1] not in _BREAKS:
            chomp = "-"
        elif len(value) == 1 or value[-2] in _BREAKS:
            chomp = "+"
        if chomp:
            self.write_indicator(chomp, False, False, False)
        self.put_break()
        self.indention = True
        self.whitespace = True
        breaks = True
        for char in value:
            if char in _BREAKS:
                self._write_break(char)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent(indent)
                self.put(char)
                self.indention = False
                breaks = False

    def _write_break(self, char: str) -> None:
        if char == "\n":
            self.put_break()
        else:
            self.out.append(char)
            self.column = 0

    # mappings ------------------------------------------------------------------------------

    def mapping(self, mapping: Mapping[str, Value], indent: int) -> None:
        # Pre-sorting by code point makes the result independent of the input order even where
        # go-yaml's order is not transitive (e.g. "9" < "10" < "1A" < "9"); Go's own output is
        # random for such key sets, because it sorts Go's randomly ordered map keys.
        for key in sorted(sorted(mapping), key=functools.cmp_to_key(_compare)):
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, got {key!r}")
            self.write_indent(indent)
            simple = len(key.encode("utf-8")) <= _MAX_SIMPLE_KEY and not any(c in _BREAKS for c in key)
            if simple:
                self.scalar(key, indent + _BEST_INDENT, simple_key=True)
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.scalar(key, indent + _BEST_INDENT, simple_key=False)
                self.write_indent(indent)
                self.write_indicator(":", True, False, True)
            value = mapping[key]
            if isinstance(value, Mapping):
                if value:
                    self.mapping(value, indent + _BEST_INDENT)
                else:
                    self.write_indicator("{}", True, False, False)
            else:
                self.scalar(value, indent + _BEST_INDENT, simple_key=False)


def marshal(document: Mapping[str, Value]) -> str:
    """Return what ``sigs.k8s.io/yaml.Marshal`` produces for the JSON object ``document``. Pure.

    Raises ``ValueError`` for strings Go cannot marshal this way (control characters such as U+007F).
    """
    document = _through_json(document)
    emitter = _Emitter()
    if document:
        emitter.mapping(document, 0)
        emitter.write_indent(0)
    else:
        emitter.put("{}")
        emitter.put_break()
    return "".join(emitter.out)
