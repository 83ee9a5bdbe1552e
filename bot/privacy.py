"""Masking personal data in logs: phone numbers, ID-card numbers and street addresses.

`install_log_masking()` wraps the logging record factory, so every record from every logger is
masked when it is created, whatever handlers Rasa or rasa_sdk configure later.
"""

from __future__ import annotations

import logging
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# The street part of an address (after the city and district, which stay readable):
# 文三路88号3栋2单元501室, 阳光小区5幢.
_STREET_NAME = r"(?:(?![省市区县镇乡])[\u4e00-\u9fff]){1,10}"
_ADDRESS = re.compile(
    rf"{_STREET_NAME}(?:(?:路|街|大道|道|巷|弄|胡同)\d{{1,5}}号|小区|花园|公寓)[0-9A-Za-z\u4e00-\u9fff\-]{{0,20}}"
)
_installed = False


def mask_personal_data(text: str) -> str:
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _ADDRESS.sub("***", text)


def install_log_masking() -> None:
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        masked = mask_personal_data(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True
