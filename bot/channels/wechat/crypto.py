"""Signatures and AES 安全模式 of WeChat server pushes (the wechatpy split: no Rasa imports)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_BITS = 256  # WeChat pads PKCS#7 to 32-byte blocks
MAX_CLOCK_SKEW_S = 300  # a push's `timestamp` may be at most 5 minutes off our clock, either way
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class WeChatCryptoError(ValueError):
    """A push that is not authentic or cannot be decrypted."""


def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def check_signature(token: str, expected: str, *parts: str) -> bool:
    return bool(token) and bool(expected) and hmac.compare_digest(signature(token, *parts), expected)


def fresh(timestamp: str, now: float, skew_s: int = MAX_CLOCK_SKEW_S) -> bool:
    """A push's `timestamp` query parameter (unix seconds) is within `skew_s` of `now`."""
    if not _UNIX_SECONDS.fullmatch(timestamp or ""):
        return False
    return abs(now - int(timestamp)) <= skew_s


class MessageCrypto:
    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        try:
            self.key = base64.b64decode(encoding_aes_key + "=")
        except ValueError as error:
            raise WeChatCryptoError("bad EncodingAESKey") from error
        if len(self.key) != 32:
            raise WeChatCryptoError("EncodingAESKey must decode to 32 bytes")
        self.token, self.appid = token, appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, text: str, random16: bytes = None) -> str:
        body = text.encode()
        plain = (random16 or os.urandom(16)) + struct.pack("!I", len(body)) + body + self.appid.encode()
        padder = padding.PKCS7(BLOCK_BITS).padder()
        padded = padder.update(plain) + padder.finalize()
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
            if not raw or len(raw) % 16:
                raise ValueError("truncated ciphertext")
            decryptor = self._cipher().decryptor()
            padded = decryptor.update(raw) + decryptor.finalize()
            unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
            plain = unpadder.update(padded) + unpadder.finalize()
            length = struct.unpack("!I", plain[16:20])[0]
            body, appid = plain[20 : 20 + length], plain[20 + length :]
        except (ValueError, struct.error) as error:
            raise WeChatCryptoError(f"cannot decrypt: {error}") from error
        if not self.appid or appid.decode(errors="replace") != self.appid:
            raise WeChatCryptoError("the ciphertext is for another appid")
        return body.decode()
