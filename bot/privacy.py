"""Masking personal data in logs: phone numbers, ID-card numbers, e-mail addresses and street
addresses, in log messages and in the exception text logged with them.

`mask_personal_data(text)` is the one masking function. It recognises:
  - mobile numbers `13812345678`, with `+86`/`0086`/`86`/`(+86)` in front, written 3-4-4 with
    spaces or hyphens (`138-1234-5678`, `138 1234 5678`) or one digit at a time (`1 3 8 …`);
  - landline numbers with an area code: `0571-88886666`, `(010)12345678`, `0571 8888 6666`;
  - ID-card numbers: 18 characters (17 digits and a digit or X) and the old 15-digit ones (whose
    birth date must be a real month and day), also written 6-8-4 / 6-6-3 with spaces or hyphens;
  - e-mail addresses (`zhang.san@example.com` becomes `z***@example.com`);
  - the street part of an address (`文三路88号3栋2单元501室`, `阳光小区5幢`).
Full-width digits and signs (`１３８－１２３４－５６７８`, `＋８６`, `＠`) are recognised like
ASCII ones, and so are `\\uXXXX` escapes as JSON logs write them. Digits are replaced by `*`
in place, so the shape of what was logged stays readable: `138****5678`, `+86 138-****-5678`,
`110101********4518`. Order numbers (16 digits, `2026112012345678`) and other numbers that are
none of these shapes stay readable.

`install_log_masking()` wraps the logging record factory, so every record from every logger is
masked when it is created, whatever handlers Rasa or rasa_sdk configure later: the message, the
stack (`stack_info`) and the exception text (`exc_info` is formatted into a masked `exc_text`,
which `logging.Formatter` prints instead of formatting the traceback again).
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Match, Pattern

# Full-width digits, letters and signs mapped one character to one character (so positions in
# the mapped text are positions in the original), plus the ideographic space.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = ord(" ")
for _dash in "\u2010\u2011\u2012\u2013\u2014\u2212":
    _FULLWIDTH[ord(_dash)] = ord("-")

_SEP = r"[ \-]"  # one optional separator between digit groups (after the mapping above)

_MOBILE = re.compile(
    r"(?<!\d)"
    r"(?:(?:\+|00)86[ \-]?|\(\+?86\)[ \-]?|86[ \-]?)?"
    rf"(?P<core>1[3-9]\d{_SEP}?\d{{4}}{_SEP}?\d{{4}}|1(?P<s>{_SEP})[3-9](?:(?P=s)\d){{9}})"
    r"(?!\d)"
)
_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z_\-])"
    rf"(?:\(0\d{{2,3}}\)[ \-]?|0\d{{2,3}}{_SEP}?)"
    rf"(?P<core>[2-9]\d{{2,3}}{_SEP}?\d{{4}})"
    r"(?![0-9A-Za-z])"
)
_ID_18 = re.compile(
    rf"(?<![0-9A-Za-z])(?P<core>\d{{6}}{_SEP}?\d{{8}}{_SEP}?\d{{3}}[0-9Xx])(?![0-9A-Za-z])"
)
_ID_15 = re.compile(
    r"(?<![0-9A-Za-z])"
    rf"(?P<core>[1-9]\d{{5}}{_SEP}?\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_SEP}?\d{{3}})"
    r"(?![0-9A-Za-z])"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])(?P<local>[A-Za-z0-9._%+\-]+)@"
    r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,})"
)
# The street part of an address (after the city and district, which stay readable):
# 文三路88号3栋2单元501室, 阳光小区5幢.
_STREET_NAME = r"(?:(?![省市区县镇乡])[\u4e00-\u9fff]){1,10}"
_ADDRESS = re.compile(
    rf"{_STREET_NAME}(?:(?:路|街|大道|道|巷|弄|胡同)\d{{1,5}}号|小区|花园|公寓)[0-9A-Za-z\u4e00-\u9fff\-]{{0,20}}"
)
# A \uXXXX escape (JSON's ensure_ascii output) of a non-ASCII character, not itself escaped.
_JSON_ESCAPE = re.compile(r"(\\+)u([0-9a-fA-F]{4})")

_installed = False


def _keep_ends(original: str, mapped: str, first: int, last: int) -> str:
    """Every digit of `original` (and a final X) becomes '*', except the first `first` and the
    last `last`; separators stay."""
    positions = [i for i, c in enumerate(mapped) if c.isdigit() or (c in "Xx" and i == len(mapped) - 1)]
    hidden = set(positions[first:len(positions) - last])
    return "".join("*" if i in hidden else c for i, c in enumerate(original))


def _substitute(text: str, pattern: Pattern[str], mask: Callable[[str, Match[str]], str]) -> str:
    """Find `pattern` in the full-width-mapped text, replace the spans found in the original."""
    mapped = text.translate(_FULLWIDTH)
    parts, end = [], 0
    for match in pattern.finditer(mapped):
        parts.append(text[end:match.start()])
        parts.append(mask(text[match.start():match.end()], match))
        end = match.end()
    if not parts:
        return text
    parts.append(text[end:])
    return "".join(parts)


def _keep_ends_of_core(first: int, last: int) -> Callable[[str, Match[str]], str]:
    def mask(original: str, match: Match[str]) -> str:
        start, end = match.start("core") - match.start(), match.end("core") - match.start()
        core = _keep_ends(original[start:end], match.group("core"), first, last)
        return original[:start] + core + original[end:]
    return mask


def _mask_email(original: str, match: Match[str]) -> str:
    at = match.start("domain") - match.start() - 1
    return original[:1] + "***" + original[at:]


def _unescape_json(text: str) -> str:
    def one(match: Match[str]) -> str:
        slashes, code = match.group(1), int(match.group(2), 16)
        if len(slashes) % 2 == 0 or code < 0x80 or 0xD800 <= code <= 0xDFFF:
            return match.group(0)
        return slashes[:-1] + chr(code)
    return _JSON_ESCAPE.sub(one, text)


def _mask(text: str) -> str:
    text = _substitute(text, _EMAIL, _mask_email)
    text = _substitute(text, _ID_18, _keep_ends_of_core(6, 4))
    text = _substitute(text, _ID_15, _keep_ends_of_core(6, 3))
    text = _substitute(text, _MOBILE, _keep_ends_of_core(3, 4))
    text = _substitute(text, _LANDLINE, _keep_ends_of_core(0, 4))
    return _ADDRESS.sub("***", text)


def mask_personal_data(text: str) -> str:
    """`text` with every phone number, ID-card number, e-mail address and street address masked."""
    if not text:
        return text
    masked = _mask(text)
    if "\\u" in text:
        # JSON logs write non-ASCII as \uXXXX: mask what those escapes spell out as well.
        unescaped = _unescape_json(masked)
        if unescaped != masked:
            remasked = _mask(unescaped)
            if remasked != unescaped:
                return remasked
    return masked


def _masked_exception_text(record: logging.LogRecord) -> None:
    if record.exc_info and not record.exc_text:
        try:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        except Exception:  # noqa: BLE001 - a traceback that cannot be printed: keep what we have
            record.exc_text = None
    if record.exc_text:
        record.exc_text = mask_personal_data(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_personal_data(record.stack_info)


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Masks a record's message, exception text and stack in place (and returns it)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = None
    if message is not None:
        masked = mask_personal_data(message)
        if masked != message:
            record.msg, record.args = masked, ()
    _masked_exception_text(record)
    return record


def install_log_masking() -> None:
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        return mask_record(make_record(*args, **kwargs))

    logging.setLogRecordFactory(masked_record)
    _installed = True
