"""Runtime settings, read from environment variables with local defaults (see README)."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Tuple

from bot.paths import ROOT


# An exact origin: scheme://host[:port], nothing else.
_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def parse_origins(value: str) -> Tuple[str, ...]:
    """CORS_ORIGINS as a tuple of exact origins; anything else raises ValueError.

    Wildcards and patterns are refused: sanic-cors, which Rasa uses for --cors, treats an origin
    containing *, ?, ] or a backslash as a regular expression and matches it without an end
    anchor, so `https://.*\\.shop\\.com` would also admit https://x.shop.com.evil.example.
    """
    origins = tuple(value.split())
    bad = [origin for origin in origins if not _ORIGIN.match(origin)]
    if bad:
        raise ValueError(f"CORS_ORIGINS must list exact origins like https://shop.example.com "
                         f"(no wildcards, paths or trailing slashes); refused: {' '.join(bad)}")
    return origins


@dataclass(frozen=True)
class Settings:
    redis_url: Optional[str]
    embedded_redis_port: int
    bind_host: str
    rasa_port: int
    action_port: int
    web_port: int
    rasa_api_token: Optional[str]
    cors_origins: str
    var_dir: Path
    models_dir: Path
    store_signing_secret: Optional[str] = None
    order_system_base_url: Optional[str] = None
    order_system_token: Optional[str] = None
    order_system_timeout_s: float = 3.0
    sender_max_per_second: int = 5
    # Limits (issue 13): text of one message, body of one HTTP request (Rasa and the web app).
    max_message_chars: int = 2000
    max_body_bytes: int = 1024 * 1024
    # DEMO=1 (set by `make run`) lets /shop sign demo customers' tokens; refused when
    # XIAOBAO_ENV=production.
    demo: bool = False
    environment: str = "development"
    # Uploaded photos: their own folder (production: its own volume), kept upload_retention_days,
    # and quotas per sender (web session or IP) and for everyone.
    uploads_dir_override: Optional[Path] = None
    upload_retention_days: float = 30.0
    uploads_per_sender_hour: int = 20
    upload_bytes_per_sender_day: int = 50 * 1024 * 1024
    uploads_global_hour: int = 1000
    upload_bytes_global_day: int = 2 * 1024 * 1024 * 1024
    # The agent console: TRUSTED_PROXIES (comma-separated IPs) are the peers whose
    # X-Forwarded-Proto / X-Forwarded-For are believed (cookies Secure over HTTPS, the client IP
    # for login limits); CONSOLE_ORIGINS (exact origins) may open /ws besides the console's own.
    trusted_proxies: Tuple[str, ...] = ()
    console_origins: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        web_port = int(env.get("WEB_PORT", "8000"))
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            embedded_redis_port=int(env.get("EMBEDDED_REDIS_PORT", "6380")),
            bind_host=env.get("BIND_HOST", "127.0.0.1"),
            rasa_port=int(env.get("RASA_PORT", "5005")),
            action_port=int(env.get("ACTION_PORT", "5055")),
            web_port=web_port,
            rasa_api_token=env.get("RASA_API_TOKEN") or None,
            cors_origins=env.get(
                "CORS_ORIGINS", f"http://localhost:{web_port} http://127.0.0.1:{web_port}"
            ),
            var_dir=Path(env.get("XIAOBAO_VAR_DIR", ROOT / "var")),
            models_dir=Path(env.get("XIAOBAO_MODELS_DIR", ROOT / "models")),
            store_signing_secret=env.get("STORE_SIGNING_SECRET") or None,
            order_system_base_url=env.get("ORDER_SYSTEM_BASE_URL") or None,
            order_system_token=env.get("ORDER_SYSTEM_TOKEN") or None,
            order_system_timeout_s=float(env.get("ORDER_SYSTEM_TIMEOUT_S", "3")),
            sender_max_per_second=int(env.get("SENDER_MAX_PER_SECOND", "5")),
            max_message_chars=int(env.get("MAX_MESSAGE_CHARS", "2000")),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(1024 * 1024))),
            demo=env.get("DEMO", "") == "1",
            environment=env.get("XIAOBAO_ENV", "development"),
            uploads_dir_override=Path(env["UPLOADS_DIR"]) if env.get("UPLOADS_DIR") else None,
            upload_retention_days=float(env.get("UPLOAD_RETENTION_DAYS", "30")),
            uploads_per_sender_hour=int(env.get("UPLOADS_PER_SENDER_HOUR", "20")),
            upload_bytes_per_sender_day=int(env.get("UPLOAD_BYTES_PER_SENDER_DAY", str(50 * 1024 * 1024))),
            uploads_global_hour=int(env.get("UPLOADS_GLOBAL_HOUR", "1000")),
            upload_bytes_global_day=int(env.get("UPLOAD_BYTES_GLOBAL_DAY", str(2 * 1024 * 1024 * 1024))),
            trusted_proxies=tuple(a.strip() for a in env.get("TRUSTED_PROXIES", "").split(",") if a.strip()),
            console_origins=env.get("CONSOLE_ORIGINS", ""),
        )

    @property
    def allowed_origins(self) -> Tuple[str, ...]:
        """The browser origins allowed to call Rasa and the web chat's JSON routes (CORS)."""
        return parse_origins(self.cors_origins)

    @property
    def action_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}/webhook"

    @property
    def uploads_dir(self) -> Path:
        """Uploaded photos: UPLOADS_DIR, else var/uploads (production: put it on its own volume)."""
        return self.uploads_dir_override or self.var_dir / "uploads"

    @property
    def demo_refused(self) -> Optional[str]:
        """Why these settings must not start (DEMO=1 in production), or None."""
        if self.demo and self.environment == "production":
            return "DEMO=1 signs demo customers' tokens for anyone; it is refused with XIAOBAO_ENV=production"
        return None

    @property
    def embedded_redis_dir(self) -> Path:
        """Where the embedded redis-server (no REDIS_URL) keeps its append-only file."""
        return self.var_dir / "redis"


# -- secrets: the one place they are created -------------------------------------------------
# `make run` (bot/runner.py), the console (`python -m bot.console serve` and `add-agent`) and
# anything else read them through these functions, in whatever order they first run.

def _hex_secret() -> str:
    return secrets.token_hex(32)  # hex: a leading "-" would read as a CLI option


def _read_secret(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def persisted_secret(settings: Settings, configured: Optional[str], name: str,
                     make: Callable[[], str] = _hex_secret) -> str:
    """The configured secret, or one generated once and kept (mode 600) in var/<name>.

    Created atomically (written aside, then hard-linked into place), so processes starting at the
    same time agree on one value. An empty file, as `add-agent` used to leave, is replaced.
    """
    if configured:
        return configured
    path = settings.var_dir / name
    existing = _read_secret(path)
    if existing:
        return existing
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.var_dir, 0o700)  # secrets, uploads and Redis's data: nobody else's business
    aside = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
        if existing == "":
            os.replace(aside, path)
        else:
            try:
                os.link(aside, path)
            except FileExistsError:
                pass  # another process made it first: theirs is the one
    finally:
        aside.unlink(missing_ok=True)
    return _read_secret(path) or ""


def redis_password(settings: Settings) -> str:
    """The embedded Redis's password (`requirepass`), generated once into var/redis_password."""
    return persisted_secret(settings, None, "redis_password")


def api_token(settings: Settings) -> str:
    """RASA_API_TOKEN, or a token generated once and kept in var/rasa_api_token."""
    return persisted_secret(settings, settings.rasa_api_token, "rasa_api_token")


def signing_secret(settings: Settings) -> str:
    """STORE_SIGNING_SECRET (shared with the store's backend), or a local one in var/."""
    return persisted_secret(settings, settings.store_signing_secret, "store_signing_secret")


def risk_pseudonym_key(settings: Settings, env: Mapping[str, str] = os.environ) -> str:
    """RISK_PSEUDONYM_KEY (the HMAC key of the pseudonyms in rights events; every action-server
    replica needs the same one), or one generated once and kept in var/risk_pseudonym_key."""
    return persisted_secret(settings, env.get("RISK_PSEUDONYM_KEY") or None, "risk_pseudonym_key")


def console_session_key(settings: Settings, configured: Optional[str] = None) -> bytes:
    """The Fernet key of the console's session cookies: CONSOLE_SESSION_KEY, or var/console_session_key."""
    from cryptography.fernet import Fernet

    configured = os.environ.get("CONSOLE_SESSION_KEY") if configured is None else configured
    return persisted_secret(settings, configured, "console_session_key",
                            lambda: Fernet.generate_key().decode()).encode()
