"""``io_lib:format/2`` in pure Python: the directives Erlang code uses, laid out as OTP lays them out.

Theory of operation
-------------------
``io:format(Fmt, Args)`` on an Erlang node does not format anything: it sends its group leader
``{put_chars, unicode, io_lib, format, [Fmt, Args]}`` and the io server formats. When the group
leader is a philipjose io server, :func:`format` does that work. It follows OTP 25's
``io_lib_format`` (directive syntax ``~F.P.PadModC``, ``*`` arguments, adjustment, truncation and
``*****`` overflow), ``io_lib:write`` (``~w``, ``~W``) and ``io_lib_pretty`` (``~p``, ``~P``: the
intermediate form with lengths, single-line when it fits in the line, otherwise OTP's layout of
lists, tagged tuples and maps, with a list of atomic elements filling lines), and prints floats
with the shortest digits that read back (``io_lib_format:fwrite_g``).

Directives: ``~c ~f ~e ~g ~s ~w ~p ~W ~P ~B ~X ~# ~b ~x ~+ ~i ~n ~~`` with the ``t`` (Unicode),
``l`` (no string detection) and ``k`` (ordered map keys, OTP 26+) modifiers. Maps of up to 32 keys
print with their keys in term order (OTP 25's order, and ``~kp``'s); OTP 26+ prints them in its
internal atom-table order, which no other node can know. Not provided: ``~K``, records
in ``~p`` (the io server has no record definitions, as in Erlang outside the shell) and
``chars_limit``. Anything else is a :class:`FormatError`, which the io server answers as OTP does
(``{error, ...}``, so that ``io:format`` raises ``badarg`` in the caller).

Terms are the decoded Python values of :mod:`philipjose.term`; a Python ``str`` (what a local
caller may pass) is taken as the UTF-8 binary it would encode to, ``None`` as ``undefined``.
Pids, ports and references of other nodes print with a node number given by ``node_index`` (the
BEAM prints its own connection number there, which a Python node cannot know).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from philipjose.term import Atom, BitString, ExportFun, Fun, ImproperList, Pid, Port, Reference

__all__ = ["FormatError", "chars_of", "format", "write"]

_UNDEFINED: Final = Atom("undefined")
_LATIN1: Final = "latin1"
_UNICODE: Final = "unicode"

#: Reserved words that ``io_lib:write_atom`` quotes (OTP 25 with its default features; OTP 27
#: also reserves ``maybe`` and ``else``).
_RESERVED: Final = frozenset(
    {
        *("after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case"),
        *("catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive"),
        *("rem", "try", "when", "xor"),
    }
)


class FormatError(ValueError):
    """The format string or its arguments are bad (``io_lib:format`` would raise ``badarg``)."""


NodeIndex = Callable[[Atom], int]


def _no_index(node: Atom) -> int:
    return 0


# ---------------------------------------------------------------------------------- characters


def _is_lower_start(c: int) -> bool:
    return 97 <= c <= 122 or (223 <= c <= 255 and c != 247)


def _is_name_char(c: int) -> bool:
    return (
        97 <= c <= 122
        or 65 <= c <= 90
        or 48 <= c <= 57
        or c in (95, 64)
        or (223 <= c <= 255 and c != 247)
        or (192 <= c <= 222 and c != 215)
    )


_ESCAPES: Final = {10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 8: "\\b", 12: "\\f", 27: "\\e", 127: "\\d"}


def _escape_char(c: int, quote: int, enc: str) -> str:
    if c == quote or c == 92:
        return "\\" + chr(c)
    if 32 <= c <= 126 or 160 <= c <= 255:
        return chr(c)
    if c > 255:
        return chr(c) if enc == _UNICODE else f"\\x{{{c:X}}}"
    esc = _ESCAPES.get(c)
    return esc if esc is not None else f"\\{c:03o}"


def _quoted(codes: list[int], quote: str, enc: str) -> str:
    q = ord(quote)
    return quote + "".join(_escape_char(c, q, enc) for c in codes) + quote


def write_atom(name: str, enc: str = _UNICODE) -> str:
    """An atom as ``io_lib:write_atom`` writes it (quoted when needed; latin1: ``\\x{...}``)."""
    codes = [ord(ch) for ch in name]
    if (
        codes
        and _is_lower_start(codes[0])
        and all(_is_name_char(c) for c in codes)
        and str(name) not in _RESERVED
    ):
        return name
    return _quoted(codes, "'", enc)


def _printable_latin1(codes: list[int]) -> bool:
    return all(32 <= c <= 126 or 160 <= c <= 255 or 8 <= c <= 13 or c == 27 for c in codes)


def _printable_unicode_char(c: int) -> bool:
    return (
        32 <= c <= 126
        or 8 <= c <= 13
        or c == 27
        or 160 <= c < 0xD800
        or 0xDFFF < c < 0xFFFE
        or 0xFFFF < c <= 0x10FFFF
    )


# ---------------------------------------------------------------------------------- numbers


def _float_digits(x: float) -> tuple[str, int]:
    """The shortest digits that read back as ``x`` (abs) and the exponent ``e``: value = 0.D * 10**e."""
    r = repr(abs(x))
    mantissa, _, exp = r.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0)
    lead = len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0") or "0"
    return digits, point - lead


_TWO_53: Final = float(2**53)


def float_g(x: float) -> str:
    """``io_lib_format:fwrite_g/1``: the shortest of the fixed and the exponent forms that reads back."""
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    digits, e = _float_digits(x)
    n = len(digits)
    # fixed form
    if e <= 0:
        fixed = "0." + "0" * (-e) + digits
    elif e >= n:
        fixed = digits + "0" * (e - n) + ".0"
    else:
        fixed = digits[:e] + "." + digits[e:]
    sci = digits[0] + "." + (digits[1:] or "0") + "e" + str(e - 1)
    if abs(x) >= _TWO_53:  # beyond the exact integers OTP always uses the exponent form
        return sign + sci
    return sign + (fixed if len(fixed) <= len(sci) else sci)


def _float_data(x: float) -> tuple[str, int]:
    """``float_to_list(X)``'s 21 significant digits (as ``"%.20e"``) and the exponent of the first."""
    text = f"{abs(x):.20e}"
    mantissa, _, exp = text.partition("e")
    return mantissa.replace(".", ""), int(exp)


def _round_half_up(digits: str, keep: int) -> tuple[str, bool]:
    """Round the digit string to ``keep`` digits, half up; True when it grew a digit (9.99 -> 10.0)."""
    if keep >= len(digits):
        return digits + "0" * (keep - len(digits)), False
    if keep < 0:
        return "", False
    head = digits[:keep]
    if digits[keep] >= "5":
        n = int(head or "0") + 1
        text = str(n).rjust(keep, "0") if keep else str(n)
        if len(text) > keep:
            return text, True
        return text, False
    return head, False


def _float_e(x: float, p: int) -> str:
    sign = "-" if x < 0 or (x == 0 and math.copysign(1.0, x) < 0) else ""
    if x == 0:
        return sign + "0." + "0" * (p - 1) + "e+0"
    digits, e = _float_data(x)
    rounded, grew = _round_half_up(digits, p)
    if grew:
        rounded = rounded[:p]
        e += 1
    exp = f"e+{e}" if e >= 0 else f"e{e}"
    return sign + rounded[0] + "." + rounded[1:] + exp


def _float_f(x: float, p: int) -> str:
    sign = "-" if x < 0 or (x == 0 and math.copysign(1.0, x) < 0) else ""
    if x == 0:
        return sign + "0." + "0" * p
    digits, e = _float_data(x)
    # value = 0.d1d2... * 10**(e+1); keep e+1+p digits
    keep = e + 1 + p
    if keep < 0:
        return sign + "0." + "0" * p
    rounded, grew = _round_half_up(digits, keep)
    int_digits = e + 1 + (1 if grew else 0)
    if int_digits <= 0:
        rounded = "0" * (1 - int_digits) + rounded
        int_digits = 1
    whole = rounded[:int_digits] or "0"
    frac = rounded[int_digits : int_digits + p]
    return sign + whole + "." + frac.ljust(p, "0")


def _float_g_p(x: float, p: int) -> str:
    # io_lib_format: style f for 0.1 =< |x| < 10000 (with p significant digits), else style e
    a = abs(x)
    e: int | None
    if a < 0.1:
        e = -2
    elif a < 1.0:
        e = -1
    elif a < 10.0:
        e = 0
    elif a < 100.0:
        e = 1
    elif a < 1000.0:
        e = 2
    elif a < 10000.0:
        e = 3
    else:
        e = None
    if e is not None and ((p <= 1 and e == -1) or (p - 1 > e >= -1)):
        return _float_f(x, p - 1 - e)
    if p <= 1:
        return _float_e(x, 2)
    return _float_e(x, p)


_DIGITS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _int_base(n: int, base: int, lower: bool) -> str:
    if n == 0:
        return "0"
    neg = n < 0
    n = -n if neg else n
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(_DIGITS[r])
    text = "".join(reversed(out))
    if lower:
        text = text.lower()
    return ("-" if neg else "") + text


# ---------------------------------------------------------------------------------- ~w


def _node_number(node: Atom, local: Atom | None, node_index: NodeIndex) -> int:
    if local is not None and node == local:
        return 0
    return node_index(node)


class _Writer:
    """``io_lib:write`` with a depth (``-1``: unlimited) and an encoding for atoms."""

    def __init__(self, enc: str, local: Atom | None, node_index: NodeIndex) -> None:
        self.enc = enc
        self.local = local
        self.node_index = node_index

    def atomic(self, t: Any) -> str | None:
        """The text of a term that is not a container, or None."""
        if t is True:
            return "true"
        if t is False:
            return "false"
        if t is None:
            return "undefined"
        tp = type(t)
        if tp is Atom:
            return write_atom(t, self.enc)
        if tp is int or (isinstance(t, int) and tp is not bool):
            return str(int(t))
        if isinstance(t, float):
            return float_g(float(t))
        if tp is Pid:
            n = _node_number(t.node, self.local, self.node_index)
            return f"<{n}.{t.id}.{t.serial}>"
        if tp is Port:
            n = _node_number(t.node, self.local, self.node_index)
            return f"#Port<{n}.{t.id}>"
        if tp is Reference:
            n = _node_number(t.node, self.local, self.node_index)
            return "#Ref<" + ".".join([str(n), *(str(i) for i in reversed(t.ids))]) + ">"
        if tp is ExportFun:
            return f"fun {write_atom(t.module, self.enc)}:{write_atom(t.function, self.enc)}/{t.arity}"
        if tp is Fun:
            return f"#Fun<{t.module}.{t.index}.{t.old_uniq}>"
        return None

    def write(self, t: Any, d: int) -> str:
        if d == 0:
            return "..."
        text = self.atomic(t)
        if text is not None:
            return text
        if isinstance(t, str):  # a Python str: its UTF-8 binary
            t = t.encode()
        if isinstance(t, (bytes, bytearray, memoryview)):
            return _write_binary(bytes(t), 0, d)
        if isinstance(t, BitString):
            return _write_binary(t.data, t.bits, d)
        if isinstance(t, tuple) and not _is_list(t):
            if not t:
                return "{}"
            if d == 1:
                return "{...}"
            return "{" + self.write(t[0], d - 1) + self._tail(list(t[1:]), None, d - 1, ",") + "}"
        if _is_list(t) or isinstance(t, ImproperList):
            items, tail = _list_parts(t)
            if not items:
                return "[]"
            if d == 1:
                return "[...]"
            return "[" + self.write(items[0], d - 1) + self._tail(items[1:], tail, d - 1, "|") + "]"
        if isinstance(t, Mapping):
            pairs = _map_items(t)
            if not pairs:
                return "#{}"
            if d == 1:
                return "#{...}"
            d0 = d - 1
            out = [self._pair(pairs[0], d0)]
            budget = d0
            for pair in pairs[1:]:
                if budget == 1:
                    break
                out.append("," + self._pair(pair, d0))
                budget -= 1
            if budget == 1:  # as io_lib: said even when no pair is left
                out.append(",...")
            return "#{" + "".join(out) + "}"
        raise FormatError(f"cannot format a {type(t).__name__}")

    def _pair(self, pair: tuple[Any, Any], d: int) -> str:
        return self.write(pair[0], d) + " => " + self.write(pair[1], d)

    def _tail(self, items: list[Any], tail: Any, d: int, sep: str) -> str:
        out = []
        for x in items:
            if d == 1:
                out.append(sep + "...")
                return "".join(out)
            out.append("," + self.write(x, d - 1))
            d -= 1
        if tail is not None:
            if d == 1:
                out.append(sep + "...")
            else:
                out.append(sep + self.write(tail, d - 1))
        return "".join(out)


def _order_key(t: Any) -> tuple[Any, ...]:
    """A sort key following Erlang's term order (number < atom < reference < fun < port < pid <
    tuple < map < nil < list < bitstring), enough to order the keys of a small map as OTP does."""
    if t is True or t is False or t is None:
        return (1, "true" if t is True else "false" if t is False else "undefined")
    if type(t) is Atom:
        return (1, str(t))
    if isinstance(t, (int, float)):
        return (0, t, 1 if isinstance(t, float) else 0)
    if type(t) is Reference:
        return (2, str(t.node), tuple(reversed(t.ids)))
    if type(t) in (Fun, ExportFun):
        return (3, repr(t))
    if type(t) is Port:
        return (4, str(t.node), t.id)
    if type(t) is Pid:
        return (5, str(t.node), t.serial, t.id)
    if isinstance(t, str):
        return (10, t.encode(), 0)
    if isinstance(t, (bytes, bytearray, memoryview)):
        return (10, bytes(t), 0)
    if isinstance(t, BitString):
        return (10, t.data, t.bits)
    if _is_list(t):
        return (8,) if not t else (9, tuple(_order_key(x) for x in t))
    if isinstance(t, ImproperList):
        return (9, tuple(_order_key(x) for x in t.elements), _order_key(t.tail))
    if isinstance(t, tuple):
        return (6, len(t), tuple(_order_key(x) for x in t))
    if isinstance(t, Mapping):
        items = _map_items(t)
        return (7, len(items), tuple(_order_key(k) for k, _ in items), tuple(_order_key(v) for _, v in items))
    return (11, repr(t))


def _map_items(t: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """The pairs of a map in the order OTP prints them: sorted keys for up to 32 keys (a flatmap);
    a larger map keeps the order it has (the order its keys came over the wire)."""
    items = list(t.items())
    if len(items) <= 32:
        with contextlib.suppress(TypeError):  # keys that do not compare in Python: keep the order
            items.sort(key=lambda kv: _order_key(kv[0]))
    return items


def _is_list(t: Any) -> bool:
    # list, or the hashable List of map keys (a tuple subclass)
    from philipjose.term import List

    return isinstance(t, (list, List))


def _list_parts(t: Any) -> tuple[list[Any], Any]:
    if isinstance(t, ImproperList):
        return list(t.elements), t.tail
    return list(t), None


def _write_binary(data: bytes, bits: int, d: int) -> str:
    if not data:
        return "<<>>"
    if bits:
        body, last = data[:-1], data[-1] >> (8 - bits)
    else:
        body, last = data, None
    parts = [str(b) for b in body]
    if last is not None:
        parts.append(f"{last}:{bits}")
    if d > 0 and len(parts) > d - 1:
        parts = [*parts[: max(d - 1, 0)], "..."]
    return "<<" + ",".join(parts) + ">>"


def write(term: Any, *, depth: int = -1, encoding: str = _LATIN1, local_node: Atom | None = None) -> str:
    """``io_lib:write(Term, Depth)``: the term in Erlang syntax on one line."""
    return _Writer(encoding, local_node, _no_index).write(term, depth)


# ---------------------------------------------------------------------------------- ~p

# An intermediate item: [kind, payload, length]. kind "s": payload is the text of an atomic
# element; "bin": a non-printable binary's text; "list": (items, tail) where tail is None,
# an item, or _DOTS; "tuple"/"tagged": (items, dots?); "map": (pairs, dots?); "pair": (k, v).
_DOTS: Final = ("dots",)


class _If:
    __slots__ = ("kind", "length", "payload")

    def __init__(self, kind: str, payload: Any, length: int) -> None:
        self.kind = kind
        self.payload = payload
        self.length = length


def _seq_length(items: list[_If], tail: Any, base: int) -> int:
    n = base
    for i, it in enumerate(items):
        n += it.length + (1 if i else 0)
    if tail is _DOTS:
        n += 3 + (1 if items else 0)
    elif tail is not None:
        n += 1 + tail.length
    return n


class _Pretty:
    """``io_lib_pretty:print/2`` without records and chars_limit."""

    def __init__(self, enc: str, strings: bool, writer: _Writer) -> None:
        self.enc = enc
        self.strings = strings
        self.w = writer

    # -- the intermediate form
    def length(self, t: Any, d: int) -> _If:
        if d == 0:
            return _If("s", "...", 3)
        text = self.w.atomic(t)
        if text is not None:
            return _If("s", text, len(text))
        if isinstance(t, str):
            t = t.encode()
        if isinstance(t, (bytes, bytearray, memoryview, BitString)):
            return self._binary(t, d)
        if isinstance(t, tuple) and not _is_list(t):
            if not t:
                return _If("s", "{}", 2)
            if d == 1:
                return _If("s", "{...}", 5)
            items, dots = self._elements(list(t), d)
            kind = (
                "tagged" if type(t[0]) is Atom or t[0] is True or t[0] is False or t[0] is None else "tuple"
            )
            if len(t) < 2:
                kind = "tuple"
            return _If(kind, (items, dots), _seq_length(items, _DOTS if dots else None, 2))
        if _is_list(t) or isinstance(t, ImproperList):
            items_raw, tail_raw = _list_parts(t)
            if not items_raw:
                return _If("s", "[]", 2)
            if (
                self.strings
                and tail_raw is None
                and d != 1
                and all(type(c) is int for c in items_raw)
                and _printable_latin1(items_raw)
            ):
                text = _quoted(items_raw, '"', self.enc)
                return _If("s", text, len(text))
            return self._list(items_raw, tail_raw, d)
        if isinstance(t, Mapping):
            if not t:
                return _If("s", "#{}", 3)
            if d == 1:
                return _If("s", "#{...}", 6)
            pairs: list[_If] = []
            dots = False
            dd = d
            for k, v in _map_items(t):
                if dd == 1:
                    dots = True
                    break
                ki = self.length(k, d - 1)
                vi = self.length(v, d - 1)
                pairs.append(_If("pair", (ki, vi), ki.length + 4 + vi.length))
                dd -= 1
            return _If("map", (pairs, dots), _seq_length(pairs, _DOTS if dots else None, 3))
        raise FormatError(f"cannot format a {type(t).__name__}")

    def _elements(self, xs: list[Any], d: int) -> tuple[list[_If], bool]:
        items: list[_If] = []
        for x in xs:
            if d == 1:
                return items, True
            items.append(self.length(x, d - 1))
            d -= 1
        return items, False

    def _list(self, xs: list[Any], tail_raw: Any, d: int) -> _If:
        if d == 1:
            return _If("s", "[...]", 5)
        items: list[_If] = []
        tail: Any = None
        for x in xs:
            if d == 1:
                tail = _DOTS
                break
            items.append(self.length(x, d - 1))
            d -= 1
        else:
            if tail_raw is not None:
                tail = _DOTS if d == 1 else self.length(tail_raw, d - 1)
        return _If("list", (items, tail), _seq_length(items, tail, 2))

    def _binary(self, t: Any, d: int) -> _If:
        if isinstance(t, BitString):
            data, bits = t.data, t.bits
        else:
            data, bits = bytes(t), 0
        if not data:
            return _If("s", "<<>>", 4)
        if d == 1:
            return _If("s", "<<...>>", 7)
        if self.strings and not bits and (d < 0 or 4 * (d - 1) >= len(data)):
            codes = list(data)
            if self.enc == _UNICODE:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                # io:printable_range() is latin1 by default: only latin1 characters count
                if text is not None and all(_printable_unicode_char(ord(c)) and ord(c) < 256 for c in text):
                    if all(ord(c) < 128 for c in text):
                        s = "<<" + _quoted(codes, '"', self.enc) + ">>"
                    else:
                        s = "<<" + _quoted([ord(c) for c in text], '"', self.enc) + "/utf8>>"
                    return _If("s", s, len(s))
            if _printable_latin1(codes):
                s = "<<" + _quoted(codes, '"', _LATIN1) + ">>"
                return _If("s", s, len(s))
        s = _write_binary(data, bits, d)
        return _If("bin", s, len(s))

    # -- layout
    def print(self, t: Any, col: int, ll: int, depth: int) -> str:
        if depth == 0:
            return "..."
        col = max(col, 1)
        text = self.w.atomic(t)
        if text is not None:
            return text
        it = self.length(t, depth)
        m = it.length
        if ll == 0 or (it.length < ll - col and it.length <= m):
            return self.flat(it)
        tind = 1
        for candidate in (-1, 4):
            try:
                self.cind(it, col, ll, m, candidate, 0, 0)
            except _NoGood:
                continue
            tind = candidate
            break
        return self.pp(it, col, ll, m, tind, " " * (col - 1), 0, 0)

    def flat(self, it: _If) -> str:
        k = it.kind
        if k in ("s", "bin"):
            return str(it.payload)
        if k == "list":
            items, tail = it.payload
            body = ",".join(self.flat(x) for x in items)
            if tail is _DOTS:
                body += "|..."
            elif tail is not None:
                body += "|" + self.flat(tail)
            return "[" + body + "]"
        if k in ("tuple", "tagged"):
            items, dots = it.payload
            return "{" + ",".join([*(self.flat(x) for x in items), *(["..."] if dots else [])]) + "}"
        if k == "map":
            pairs, dots = it.payload
            return "#{" + ",".join([*(self.flat(x) for x in pairs), *(["..."] if dots else [])]) + "}"
        if k == "pair":
            key, value = it.payload
            return self.flat(key) + " => " + self.flat(value)
        raise AssertionError(k)  # pragma: no cover

    @staticmethod
    def _atomic(it: _If) -> bool:
        return it.kind == "s"

    def _fits(self, it: _If, col: int, ll: int, m: int, ld: int, w: int) -> bool:
        return it.length < ll - col - ld and it.length + w + ld <= m

    def pp(self, it: _If, col: int, ll: int, m: int, tind: int, ind: str, ld: int, w: int) -> str:
        if self._fits(it, col, ll, m, ld, w):
            return self.flat(it)
        k = it.kind
        if k == "list":
            items, tail = it.payload
            return "[" + self.pp_list(items, tail, col + 1, ll, m, tind, ind + " ", ld, "|", w + 1) + "]"
        if k == "tagged":
            items, dots = it.payload
            return "{" + self.pp_tag_tuple(items, dots, col, ll, m, tind, ind, ld, w + 1) + "}"
        if k == "tuple":
            items, dots = it.payload
            tail = _DOTS if dots else None
            rest, last = (items, tail)
            return "{" + self.pp_list(rest, last, col + 1, ll, m, tind, ind + " ", ld, ",", w + 1) + "}"
        if k == "map":
            pairs, dots = it.payload
            return "#{" + self.pp_map(pairs, dots, col + 2, ll, m, tind, ind + "  ", ld, w + 1) + "}"
        if k == "bin":
            return self.pp_binary(str(it.payload), col + 2, ll, m, ind + "  ", ld, w)
        return self.flat(it)

    def pp_tag_tuple(
        self, items: list[_If], dots: bool, col: int, ll: int, m: int, tind: int, ind: str, ld: int, w: int
    ) -> str:
        tag, rest = items[0], items[1:]
        tail = _DOTS if dots else None
        tag_ind = tag.length + 2
        tcol = col + tag_ind
        if tind > 0 and tag_ind > tind:
            col1 = col + tind
            indent = ind + " " * tind
            return self.flat(tag) + self.pp_tail(
                rest, tail, col1, tcol, ll, m, tind, indent, ld, ",", w + tag.length
            )
        indent = ind + " " * tag_ind
        if not rest:
            return self.flat(tag) + ",..." if dots else self.flat(tag)
        return (
            self.flat(tag)
            + ","
            + self.pp_list(rest, tail, tcol, ll, m, tind, indent, ld, ",", w + tag.length + 1)
        )

    def pp_list(
        self,
        items: list[_If],
        tail: Any,
        col0: int,
        ll: int,
        m: int,
        tind: int,
        ind: str,
        ld: int,
        sep: str,
        w: int,
    ) -> str:
        if not items:
            return "..."
        first, rest = items[0], items[1:]
        es, we = self.pp_element(first, col0, ll, m, tind, ind, _last_depth(rest, tail, ld), w)
        return es + self.pp_tail(rest, tail, col0, col0 + we, ll, m, tind, ind, ld, sep, w + we)

    def pp_tail(
        self,
        items: list[_If],
        tail: Any,
        col0: int,
        col: int,
        ll: int,
        m: int,
        tind: int,
        ind: str,
        ld: int,
        sep: str,
        w: int,
    ) -> str:
        out = []
        for i, e in enumerate(items):
            more = items[i + 1 :]
            ld1 = _last_depth(more, tail, ld)
            elen = 1 + e.length
            if self._atomic(e) and (
                (ld1 == 0 and elen + 1 < ll - col and w + elen + 1 <= m)
                or (ld1 > 0 and elen < ll - col - ld1 and w + elen + ld1 <= m)
            ):
                out.append("," + self.flat(e))
                col += elen
                w += elen
            else:
                es, we = self.pp_element(e, col0, ll, m, tind, ind, ld1, 0)
                out.append(",\n" + ind + es)
                col = col0 + we
                w = we
        if tail is _DOTS:
            out.append(sep + "...")
        elif tail is not None:
            e = tail
            if self._atomic(e) and e.length + 1 < ll - col - (ld + 1) and e.length + 1 + w + (ld + 1) <= m:
                out.append(sep + self.flat(e))
            else:
                out.append(sep + "\n" + ind + self.pp(e, col0, ll, m, tind, ind, ld + 1, 0))
        return "".join(out)

    def pp_element(
        self, e: _If, col: int, ll: int, m: int, tind: int, ind: str, ld: int, w: int
    ) -> tuple[str, int]:
        if self._atomic(e) and self._fits(e, col, ll, m, ld, w):
            return self.flat(e), e.length
        return self.pp(e, col, ll, m, tind, ind, ld, w), ll

    def pp_map(
        self, pairs: list[_If], dots: bool, col: int, ll: int, m: int, tind: int, ind: str, ld: int, w: int
    ) -> str:
        tail = _DOTS if dots else None
        first, rest = pairs[0], pairs[1:]
        ps, pw = self.pp_pair(first, col, ll, m, tind, ind, _last_depth(rest, tail, ld), w)
        out = [ps]
        col0, c, w = col, col + pw, pw
        for i, p in enumerate(rest):
            ld1 = _last_depth(rest[i + 1 :], tail, ld)
            elen = 1 + p.length
            key, value = p.payload
            atomic = self._atomic(key) and self._atomic(value)
            if atomic and (
                (ld1 == 0 and elen + 1 < ll - c and w + elen + 1 <= m)
                or (ld1 > 0 and elen < ll - c - ld1 and w + elen + ld1 <= m)
            ):
                out.append("," + self.flat(p))
                c += elen
                w += elen
            else:
                ps, pw = self.pp_pair(p, col0, ll, m, tind, ind, ld1, 0)
                out.append(",\n" + ind + ps)
                c = col0 + pw
                w = pw
        if dots:
            out.append(",...")
        return "".join(out)

    def pp_pair(
        self, p: _If, col: int, ll: int, m: int, tind: int, ind: str, ld: int, w: int
    ) -> tuple[str, int]:
        key, value = p.payload
        if self._fits(p, col, ll, m, ld, w):
            return self.flat(p), (p.length if self._atomic(key) and self._atomic(value) else ll)
        i = tind if tind > 0 else 4
        vind = ind + " " * i
        return (
            self.pp(key, col, ll, m, tind, ind, ld, w)
            + " =>\n"
            + vind
            + self.pp(value, col + i, ll, m, tind, vind, ld, 0),
            ll,
        )

    def pp_binary(self, s: str, col: int, ll: int, m: int, ind: str, ld: int, w: int) -> str:
        # s is "<<b1,b2,...>>": break between bytes at the width
        n0 = max(8, min(ll - col, m - 4 - w) - ld)
        body = s[2:-2].split(",")
        out = []
        n = n0
        for i, bs in enumerate(body):
            last = i == len(body) - 1
            if not last:
                length = len(bs) + 1
                if n - length < 0:
                    out.append("\n" + ind + bs + ",")
                    n = n0 - length
                else:
                    out.append(bs + ",")
                    n -= length
            else:
                if len(bs) > n:
                    out.append("\n" + ind + bs)
                else:
                    out.append(bs)
        return "<<" + "".join(out) + ">>"

    # -- the indentation check of tagged tuples
    def cind(self, it: _If, col: int, ll: int, m: int, ind: int, ld: int, w: int) -> int:
        if self._fits(it, col, ll, m, ld, w):
            return ind
        k = it.kind
        if k == "list":
            items, tail = it.payload
            return self.cind_list(items, tail, col + 1, ll, m, ind, ld, w + 1)
        if k == "tagged":
            items, dots = it.payload
            tag, rest = items[0], items[1:]
            tail = _DOTS if dots else None
            tag_ind = tag.length + 2
            tcol = col + tag_ind
            if ind > 0 and tag_ind > ind:
                col1 = col + ind
                if m + col1 <= ll or col1 <= ll // 2:
                    return self.cind_tail(rest, tail, col1, tcol, ll, m, ind, ld, w + tag.length)
                raise _NoGood
            if m + tcol < ll or tcol < ll // 2:
                return self.cind_list(rest, tail, tcol, ll, m, ind, ld, w + tag.length + 1) if rest else ind
            raise _NoGood
        if k == "tuple":
            items, dots = it.payload
            return self.cind_list(items, _DOTS if dots else None, col + 1, ll, m, ind, ld, w + 1)
        if k == "map":
            pairs, dots = it.payload
            tail = _DOTS if dots else None
            c0 = col + 2
            first, rest = pairs[0], pairs[1:]
            pw = self.cind_pair(first, c0, ll, m, ind, _last_depth(rest, tail, ld), w + 2)
            c, ww = c0 + pw, w + 2 + pw
            for i, p in enumerate(rest):
                ld1 = _last_depth(rest[i + 1 :], tail, ld)
                elen = 1 + p.length
                key, value = p.payload
                atomic = self._atomic(key) and self._atomic(value)
                if atomic and (
                    (ld1 == 0 and elen + 1 < ll - c and ww + elen + 1 <= m)
                    or (ld1 > 0 and elen < ll - c - ld1 and ww + elen + ld1 <= m)
                ):
                    c += elen
                    ww += elen
                else:
                    pw = self.cind_pair(p, c0, ll, m, ind, ld1, 0)
                    c, ww = c0 + pw, pw
            return ind
        return ind

    def cind_pair(self, p: _If, col: int, ll: int, m: int, ind: int, ld: int, w: int) -> int:
        key, value = p.payload
        if self._fits(p, col, ll, m, ld, w):
            return p.length if self._atomic(key) and self._atomic(value) else ll
        self.cind(key, col, ll, m, ind, ld, w)
        self.cind(value, col + (ind if ind > 0 else 4), ll, m, ind, ld, 0)
        return ll

    def cind_list(
        self, items: list[_If], tail: Any, col0: int, ll: int, m: int, ind: int, ld: int, w: int
    ) -> int:
        if not items:
            return ind
        first, rest = items[0], items[1:]
        we = self.cind_element(first, col0, ll, m, ind, _last_depth(rest, tail, ld), w)
        return self.cind_tail(rest, tail, col0, col0 + we, ll, m, ind, ld, w + we)

    def cind_tail(
        self, items: list[_If], tail: Any, col0: int, col: int, ll: int, m: int, ind: int, ld: int, w: int
    ) -> int:
        for i, e in enumerate(items):
            ld1 = _last_depth(items[i + 1 :], tail, ld)
            elen = 1 + e.length
            if self._atomic(e) and (
                (ld1 == 0 and elen + 1 < ll - col and w + elen + 1 <= m)
                or (ld1 > 0 and elen < ll - col - ld1 and w + elen + ld1 <= m)
            ):
                col += elen
                w += elen
            else:
                we = self.cind_element(e, col0, ll, m, ind, ld1, 0)
                col, w = col0 + we, we
        if tail is None or tail is _DOTS:
            return ind
        if (
            self._atomic(tail)
            and tail.length + 1 < ll - col - (ld + 1)
            and tail.length + 1 + w + (ld + 1) <= m
        ):
            return ind
        return self.cind(tail, col, ll, m, ind, ld + 1, 0)

    def cind_element(self, e: _If, col: int, ll: int, m: int, ind: int, ld: int, w: int) -> int:
        if self._atomic(e) and self._fits(e, col, ll, m, ld, w):
            return e.length
        self.cind(e, col, ll, m, ind, ld, w)
        return ll


class _NoGood(Exception):
    pass


def _last_depth(rest: list[_If], tail: Any, ld: int) -> int:
    # io_lib_pretty's last_depth: 0 while elements follow, else the closing brackets after it
    if rest:
        return 0
    if tail is not None:
        return 0
    return ld + 1


# ---------------------------------------------------------------------------------- format


def chars_of(data: Any, enc: str) -> list[int]:
    """Erlang chardata (``~s``'s argument, ``put_chars``'s data) as a list of character codes.

    ``enc`` ``"latin1"``: integers 0..255 and binaries as bytes (``iolist_to_chars``);
    ``"unicode"``: any character and binaries as UTF-8 (a binary that is not UTF-8 is taken as
    latin1, as ``io_lib_format`` does). Atoms are their names. Raises :class:`FormatError`.
    """
    if type(data) is Atom:
        codes = [ord(c) for c in data]
        if enc == _LATIN1 and any(c > 255 for c in codes):
            raise FormatError("an atom with characters beyond latin1 for ~s")
        return codes
    out: list[int] = []
    _collect(data, enc, out, 0)
    return out


def _collect(data: Any, enc: str, out: list[int], depth: int) -> None:
    if depth > 1000:
        raise FormatError("chardata nested too deeply")
    if isinstance(data, str) and type(data) is not Atom:
        data = data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if enc == _UNICODE:
            try:
                out.extend(ord(c) for c in raw.decode("utf-8"))
                return
            except UnicodeDecodeError:
                pass
        out.extend(raw)
        return
    if _is_list(data):
        for x in data:
            if type(x) is int:
                if x < 0 or (enc == _LATIN1 and x > 255) or x > 0x10FFFF:
                    raise FormatError(f"not a character: {x}")
                out.append(x)
            else:
                _collect(x, enc, out, depth + 1)
        return
    raise FormatError(f"not chardata: {type(data).__name__}")




def _format_chars(fmt: Any) -> str:
    if type(fmt) is Atom:
        return str(fmt)
    if isinstance(fmt, str):
        return fmt
    if isinstance(fmt, (bytes, bytearray, memoryview)):
        return bytes(fmt).decode("latin-1")
    if _is_list(fmt):
        try:
            return "".join(chr(c) for c in chars_of(fmt, _UNICODE))
        except (ValueError, TypeError) as exc:
            raise FormatError(f"bad format string: {exc}") from None
    raise FormatError(f"the format must be a string, binary or atom, not {type(fmt).__name__}")


def format(
    fmt: Any,
    args: Any,
    *,
    local_node: Atom | None = None,
    node_index: NodeIndex | None = None,
    column: int = 0,
) -> str:
    """``io_lib:format(Fmt, Args)`` as a Python ``str`` (see the module docstring).

    ``fmt``: an Erlang string (list of codes), a binary (bytes as latin1, as OTP), an atom or a
    Python ``str``; ``args``: a list (or tuple) of terms. ``column``: characters already on the
    current line, for ``~p``'s layout. Raises :class:`FormatError` where OTP raises ``badarg``.
    """
    text = _format_chars(fmt)
    if isinstance(args, tuple) and not _is_list(args):
        args = list(args)
    if not _is_list(args):
        raise FormatError("the arguments must be a list")
    writer_index = node_index if node_index is not None else _no_index
    state = _State(list(args), local_node, writer_index)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("~", i)
        if j < 0:
            chunk = text[i:]
            out.append(chunk)
            break
        if j > i:
            out.append(text[i:j])
        i, piece = state.directive(text, j + 1, lambda: _column_now(out, column))
        out.append(piece)
    if state.args:
        raise FormatError("too many arguments")
    return "".join(out)


def _column_now(out: list[str], start: int) -> int:
    # characters on the current line so far (for ~p's initial column)
    text = "".join(out)
    nl = text.rfind("\n")
    return len(text) - nl - 1 if nl >= 0 else start + len(text)


class _State:
    def __init__(self, args: list[Any], local: Atom | None, node_index: NodeIndex) -> None:
        self.args = args
        self.local = local
        self.node_index = node_index

    def take(self) -> Any:
        if not self.args:
            raise FormatError("too few arguments")
        return self.args.pop(0)

    def _number(self, text: str, i: int) -> tuple[int | None, int]:
        n = len(text)
        if i < n and text[i] == "*":
            value = self.take()
            if type(value) is not int:
                raise FormatError("a * field needs an integer argument")
            return value, i + 1
        j = i
        while j < n and text[j].isdigit() and text[j] in "0123456789":
            j += 1
        if j == i:
            return None, i
        return int(text[i:j]), j

    def directive(self, text: str, i: int, column: Callable[[], int]) -> tuple[int, str]:
        n = len(text)
        adjust = "right"
        minus = i < n and text[i] == "-"
        if minus:
            i += 1
        width, i = self._number(text, i)
        if width is not None:
            if minus:
                width = -width
            if width < 0:
                width, adjust = -width, "left"
        precision: int | None = None
        pad = " "
        if i < n and text[i] == ".":
            i += 1
            precision, i = self._number(text, i)
            if i < n and text[i] == ".":
                i += 1
                if i >= n:
                    raise FormatError("the format ends inside a directive")
                if text[i] == "*":
                    value = self.take()
                    if type(value) is not int:
                        raise FormatError("a * pad needs a character argument")
                    pad = chr(value)
                else:
                    pad = text[i]
                i += 1
        enc = _LATIN1
        strings = True
        while i < n and text[i] in "tlk":  # k (OTP 26+: ordered map keys) is how maps always print here
            if text[i] == "t":
                enc = _UNICODE
            elif text[i] == "l":
                strings = False
            i += 1
        if i >= n:
            raise FormatError("the format ends inside a directive")
        control = text[i]
        return i + 1, self.control(control, width, adjust, precision, pad, enc, strings, column)

    def control(
        self,
        c: str,
        f: int | None,
        adj: str,
        p: int | None,
        pad: str,
        enc: str,
        strings: bool,
        column: Callable[[], int],
    ) -> str:
        if c == "~":
            return _char(ord("~"), f, adj, p, pad)
        if c == "n":
            return "\n" * (f if f is not None else 1)
        if c == "i":
            self.take()
            return ""
        if c == "c":
            a = self.take()
            if type(a) is not int:
                raise FormatError("~c needs an integer")
            return _char(a if enc == _UNICODE else a & 255, f, adj, p, pad)
        if c == "s":
            a = self.take()
            codes = chars_of(a, enc) if not isinstance(a, (int, float, tuple)) else _bad("~s")
            return _string("".join(chr(x) for x in codes), f, adj, p, pad)
        if c in "wW":
            a = self.take()
            d = self._depth() if c == "W" else -1
            writer = _Writer(enc, self.local, self.node_index)
            return _term(writer.write(a, d), f, adj, p, pad)
        if c in "pP":
            a = self.take()
            d = self._depth() if c == "P" else -1
            ll = f if f is not None else 80
            col = p if p is not None else column() + 1
            writer = _Writer(enc, self.local, self.node_index)
            return _Pretty(enc, strings, writer).print(a, col, ll, d)
        if c in "fegFEG".lower():
            a = self.take()
            if not isinstance(a, float):
                raise FormatError(f"~{c} needs a float")
            if c == "f":
                prec = 6 if p is None else p
                if prec < 1:
                    raise FormatError("~f needs a precision of at least 1")
                return _term(_float_f(a, prec), f, adj, f, pad)
            if c == "e":
                prec = 6 if p is None else p
                if prec < 2:
                    raise FormatError("~e needs a precision of at least 2")
                return _term(_float_e(a, prec), f, adj, f, pad)
            prec = 6 if p is None else p
            if prec < 1:
                raise FormatError("~g needs a precision of at least 1")
            return _term(_float_g_p(a, prec), f, adj, f, pad)
        if c in "BbXx#+":
            a = self.take()
            base = 10 if p is None else p
            if not 2 <= base <= 36:
                raise FormatError("the base must be 2 to 36")
            prefix = ""
            if c in "Xx":
                pre = self.take()
                prefix = "".join(chr(x) for x in chars_of(pre, _UNICODE))
            if not isinstance(a, int) or isinstance(a, bool):
                raise FormatError(f"~{c} needs an integer")
            lower = c in "bx+"
            digits = _int_base(int(a), base, lower)
            if c in "#+":
                prefix = f"{base}#"
            if prefix:
                digits = ("-" + prefix + digits[1:]) if digits.startswith("-") else prefix + digits
            return _term(digits, f, adj, f, pad)
        raise FormatError(f"unknown directive ~{c}")

    def _depth(self) -> int:
        d = self.take()
        if type(d) is not int:
            raise FormatError("~W and ~P need an integer depth")
        return d


def _bad(what: str) -> list[int]:
    raise FormatError(f"bad argument for {what}")


def _pad_to(data: str, padding: str, adj: str) -> str:
    return data + padding if adj == "left" else padding + data


def _char(c: int, f: int | None, adj: str, p: int | None, pad: str) -> str:
    if c < 0 or c > 0x10FFFF:
        raise FormatError("not a character")
    ch = chr(c)
    if f is None and p is None:
        return ch
    if p is None:
        return ch * f  # type: ignore[operator]
    if f is None:
        return ch * p
    if f < p:
        raise FormatError("the field width is less than the precision")
    return _pad_to(ch * p, pad * (f - p), adj)


def _string(s: str, f: int | None, adj: str, p: int | None, pad: str) -> str:
    n = len(s)
    if f is None and p is None:
        return s
    if p is None:
        assert f is not None
        return s[:f] if n > f else _pad_to(s, pad * (f - n), adj)
    if f is None:
        return s[:p] if n > p else _pad_to(s, pad * (p - n), "left")
    if f < p:
        raise FormatError("the field width is less than the precision")
    if n > p:
        body = s[:p]
    elif n < p:
        body = s + pad * (p - n)
    else:
        body = s
    return _pad_to(body, pad * (f - p), adj)


def _term(t: str, f: int | None, adj: str, p: int | None, pad: str) -> str:
    if f is None:
        return t
    length = len(t)
    limit = min(length, f if p is None else min(p, f))
    if length > limit:
        return _pad_to("*" * limit, pad * (f - limit), adj)
    return _pad_to(t, pad * (f - length), adj)

