"""Parsing WeChat pushes (XML or JSON) into one message type; unknown types never crash."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Dict, Optional

MAX_BODY_BYTES = 64 * 1024


class WeChatParseError(ValueError):
    pass


@dataclass(frozen=True)
class WeChatMessage:
    kind: str  # text, image, miniprogrampage, event, or the raw MsgType for unknown ones
    from_user: str
    to_user: str
    create_time: int
    msg_id: Optional[str] = None
    content: str = ""
    media_id: str = ""
    pic_url: str = ""
    title: str = ""
    page_path: str = ""
    event: str = ""
    session_from: str = ""

    @property
    def dedupe_key(self) -> str:
        return self.msg_id or f"{self.from_user}:{self.create_time}:{self.event}"


def fields(body: bytes) -> Dict[str, Any]:
    """The push as a flat dict, from JSON or XML."""
    if len(body) > MAX_BODY_BYTES:
        raise WeChatParseError("push too large")
    text = body.decode("utf-8", errors="strict").strip()
    if not text:
        raise WeChatParseError("empty push")
    if text.startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict):
            raise WeChatParseError("JSON push must be an object")
        return data
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise WeChatParseError("XML with a DTD is refused")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise WeChatParseError(f"bad XML: {error}") from error
    return {child.tag: (child.text or "") for child in root}


def parse(data: Dict[str, Any]) -> WeChatMessage:
    try:
        return WeChatMessage(
            kind=str(data.get("MsgType", "")),
            from_user=str(data["FromUserName"]),
            to_user=str(data.get("ToUserName", "")),
            create_time=int(data.get("CreateTime") or 0),
            msg_id=str(data["MsgId"]) if data.get("MsgId") else None,
            content=str(data.get("Content", "")),
            media_id=str(data.get("MediaId", "")),
            pic_url=str(data.get("PicUrl", "")),
            title=str(data.get("Title", "")),
            page_path=str(data.get("PagePath", "")),
            event=str(data.get("Event", "")),
            session_from=str(data.get("SessionFrom", "")),
        )
    except (KeyError, ValueError) as error:
        raise WeChatParseError(f"missing or bad field: {error}") from error
