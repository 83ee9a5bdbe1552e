"""Security measures that need no running stack (issue 7, docs/SECURITY.md).

- `make run` binds Rasa and the action server to loopback and passes only the configured origins;
- CORS_ORIGINS accepts exact origins only, and the web app allows only those;
- what browsers receive (pages, widget, console assets) never carries the Rasa API token or
  reaches for the Rasa HTTP API;
- secrets come from the environment or var/ (git-ignored), never from tracked files.
The running Rasa server's token checks, CORS and bind address: tests/integration/test_security.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot import runner
from bot.paths import ROOT
from bot.settings import Settings, parse_origins
from bot.stack import rasa_server

SHOP = "https://shop.example.com"
EVIL = "https://evil.example"


# -- make run: loopback and the configured origins --------------------------------------------
class _Child:
    """Stands in for a started process: records what the runner asked for, never runs it."""

    def __init__(self, process):
        self.name, self.command, self.env = process.name, process.command, process.env

    def start(self):
        return self

    def wait_ready(self, timeout_s):
        return 0.0

    def running(self):
        return False  # the runner's loop then stops at once

    def stop(self):
        pass


@pytest.fixture
def run_main(monkeypatch, tmp_path):
    """Runs bot.runner.main() with fake children; returns the children it started, by name."""
    for name in ("BIND_HOST", "CORS_ORIGINS", "RASA_API_TOKEN", "SANIC_HOST", "REDIS_URL", "STORE_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XIAOBAO_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # no embedded Redis is started
    model = tmp_path / "xiaobao-test.tar.gz"
    monkeypatch.setattr(runner, "ensure_trained", lambda settings: model)
    started = {}

    def fake(real):
        def build(*args, **kwargs):
            child = _Child(real(*args, **kwargs))
            started[child.name] = child
            return child
        return build

    for name in ("action_server", "rasa_server", "console_server"):
        monkeypatch.setattr(runner, name, fake(getattr(runner, name)))

    def run(**env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return runner.main(), started
    return run


def _option(command, name):
    return command[command.index(name) + 1]


def test_make_run_binds_rasa_to_loopback_with_the_token_and_the_default_origins(run_main, tmp_path):
    status, started = run_main(WEB_PORT="8123")
    assert status == 1  # the fake children "exited", so the runner stopped
    command = started["rasa server"].command
    assert _option(command, "--interface") == "127.0.0.1"
    assert "--enable-api" in command
    token = (tmp_path / "var" / "rasa_api_token").read_text().strip()
    assert _option(command, "--auth-token") == token and len(token) >= 32
    cors = command[command.index("--cors") + 1:]
    assert cors == ["http://localhost:8123", "http://127.0.0.1:8123"]
    assert "--remote-storage" not in command  # models come only from models/, see bot.model
    assert _option(command, "--model") == str(tmp_path / "xiaobao-test.tar.gz")


def test_make_run_keeps_the_action_server_on_loopback(run_main):
    _, started = run_main()
    # rasa_sdk listens on SANIC_HOST, and on every interface when it is unset.
    assert started["action server"].env["SANIC_HOST"] == "127.0.0.1"


def test_make_run_passes_configured_origins_and_refuses_patterns(run_main):
    _, started = run_main(CORS_ORIGINS=f"{SHOP} http://localhost:8000")
    command = started["rasa server"].command
    assert command[command.index("--cors") + 1:] == [SHOP, "http://localhost:8000"]

    started.clear()
    status, started = run_main(CORS_ORIGINS="https://.*\\.example\\.com")
    assert status == 2 and started == {}  # nothing starts


@pytest.mark.parametrize("value", ["*", "https://*.example.com", "https://.*\\.example\\.com", "shop.example.com",
                                   "https://shop.example.com/", "https://shop.example.com/path", "https://a.com?x"])
def test_cors_origins_must_be_exact(value):
    with pytest.raises(ValueError):
        parse_origins(value)


def test_exact_origins_are_accepted():
    assert parse_origins(f"{SHOP}  http://127.0.0.1:8000 http://[::1]:8000") == (
        SHOP, "http://127.0.0.1:8000", "http://[::1]:8000")
    assert Settings.from_env({}).bind_host == "127.0.0.1"


def test_rasa_command_has_no_cors_flag_without_origins():
    command = rasa_server(Path("m.tar.gz"), 5005, "t0ken", {}, cors_origins="").command
    assert "--cors" not in command  # sanic-cors then allows no origin at all


# -- the web app: CORS and what browsers receive ------------------------------------------------
@pytest.fixture
async def web(redis_url, aiohttp_server, aiohttp_client, tmp_path):
    from bot.console.app import ConsoleConfig, create_app
    from tests.console.test_console import RASA_TOKEN, FakeRasa

    rasa = FakeRasa()
    rasa_http = await aiohttp_server(rasa.app())
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "STORE_SIGNING_SECRET": "shop-secret",
                                  "CORS_ORIGINS": SHOP})
    config = ConsoleConfig(redis_url=redis_url, rasa_url=str(rasa_http.make_url("")), rasa_token=RASA_TOKEN,
                           session_key=Fernet.generate_key(), settings=settings,
                           rasa_public_url="http://127.0.0.1:5999")
    rasa.events["s" * 32] = [{"event": "user", "text": "你好"}]
    return await aiohttp_client(create_app(config)), RASA_TOKEN


async def test_web_chat_history_allows_only_configured_origins(web):
    from bot.webchat.conversation_ids import session_secret, sign_session

    client, _ = web
    secret = session_secret(Settings.from_env({"STORE_SIGNING_SECRET": "shop-secret"}))
    url = "/chat/history?session_id=" + sign_session("s" * 32, secret)  # the widget's signed session
    allowed = await client.get(url, headers={"Origin": SHOP})
    assert allowed.status == 200 and allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in allowed.headers["Vary"]
    for origin in (EVIL, SHOP + ".evil.example", "null"):
        foreign = await client.get(url, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in foreign.headers, origin


async def test_photo_upload_allows_only_configured_origins(web):
    from aiohttp import FormData

    client, _ = web
    for origin, expected in ((SHOP, SHOP), (EVIL, None)):
        form = FormData()
        form.add_field("image", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, filename="p.png", content_type="image/png")
        response = await client.post("/chat/upload", data=form, headers={"Origin": origin})
        assert response.status == 200
        assert response.headers.get("Access-Control-Allow-Origin") == expected


async def test_console_pages_send_no_cors_headers(web):
    client, _ = web
    for path in ("/login", "/api/queue"):
        response = await client.get(path, headers={"Origin": SHOP})
        assert "Access-Control-Allow-Origin" not in response.headers, path


async def test_pages_served_to_browsers_never_carry_the_rasa_token(web):
    client, token = web
    for path in ("/shop", "/shop?customer=c1001", "/login", "/widget/xiaobao.js", "/widget/xiaobao.css",
                 "/widget/vendor/socket.io.min.js", "/static/console.js"):
        response = await client.get(path)
        assert response.status == 200, path
        assert token not in await response.text(), path


# Paths of Rasa's HTTP API. Browsers may use Rasa's channels (socket.io, the REST webhook) only.
RASA_API = re.compile(r"/conversations\b|/model\b|/status\b|/domain\b|/tracker\b|[?&]token=|auth[-_]?token"
                      r"|RASA_API_TOKEN|:5005\b")
BROWSER_ASSETS = [*sorted((ROOT / "bot" / "webchat" / "static").glob("*.js")),
                  *sorted((ROOT / "bot" / "webchat" / "templates").glob("*.html")),
                  *sorted((ROOT / "bot" / "console" / "static").glob("*.js")),
                  *sorted((ROOT / "bot" / "console" / "templates").glob("*.html"))]


@pytest.mark.parametrize("path", BROWSER_ASSETS, ids=lambda p: str(p.relative_to(ROOT)))
def test_browser_code_never_reaches_for_the_rasa_api(path):
    text = path.read_text(encoding="utf-8")
    assert not RASA_API.findall(text), RASA_API.findall(text)


def test_there_are_browser_assets_to_check():
    names = {p.name for p in BROWSER_ASSETS}
    assert {"xiaobao.js", "shop.html", "console.js", "ticket.html"} <= names


# -- secrets only from the environment -------------------------------------------------------------
def tracked_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "API key": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    "password in a URL": re.compile(r"\b(?:redis|rediss|postgres|postgresql|mysql|amqp|mongodb)://[^:/\s@]*:"
                                    r"(?!password@|PASSWORD@|\$\{)[^@\s/]+@"),
}


def test_no_tracked_file_holds_a_secret():
    found = []
    for path in tracked_files():
        if path.suffix in {".png", ".jpg", ".gz", ".ico", ".woff", ".woff2"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for kind, pattern in SECRET_PATTERNS.items():
            found += [f"{path.relative_to(ROOT)}: {kind}" for _ in pattern.finditer(text)]
    assert found == []


def test_the_secret_scan_finds_what_it_looks_for():
    # Assembled at run time, so that this file itself holds none of them.
    samples = {"private key": "-----BEGIN RSA " + "PRIVATE KEY-----", "AWS access key": "AKIA" + "ABCDEFGHIJKLMNOP",
               "password in a URL": "redis://:hunter2" + "@redis.internal:6379/0"}
    for kind, sample in samples.items():
        assert SECRET_PATTERNS[kind].search(sample), kind
    assert not SECRET_PATTERNS["password in a URL"].search("redis://:password@redis.internal:6379/0")


SECRET_KEYS = re.compile(r"^\s*([A-Za-z_]*(?:token|secret|password|aes_key|api_key)[A-Za-z_]*)\s*:\s*(.*)$",
                         re.IGNORECASE)


@pytest.mark.parametrize("name", ["credentials.yml", "endpoints.yml"])
def test_rasa_config_takes_secrets_from_the_environment(name):
    values = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        match = SECRET_KEYS.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip()
    for key, value in values.items():
        assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", value), f"{name}: {key} is not taken from the environment"
    if name == "credentials.yml":
        assert {"token", "secret", "aes_key"} <= set(values)  # the WeChat channel's secrets


def test_runtime_state_and_local_env_are_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "var/rasa_api_token", "var/store_signing_secret",
                              "var/console_session_key", ".env", "models/x.tar.gz"],
                             cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ignored == ["var/rasa_api_token", "var/store_signing_secret", "var/console_session_key", ".env",
                       "models/x.tar.gz"]
    assert not [p for p in tracked_files() if p.relative_to(ROOT).parts[0] in ("var", "models") or p.name == ".env"]


def test_secrets_generated_on_this_machine_are_in_no_tracked_file():
    secrets = [p.read_text(errors="replace").strip() for p in (ROOT / "var").glob("*")
               if p.is_file() and p.name in ("rasa_api_token", "store_signing_secret", "console_session_key")]
    if not secrets:
        pytest.skip("no secrets generated in var/ on this machine yet (make run creates them)")
    for path in tracked_files():
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not [s for s in secrets if len(s) >= 16 and s in text], path


def test_secrets_come_from_the_environment_or_are_generated_private(tmp_path, monkeypatch):
    from bot.console.__main__ import config_from_env

    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "RASA_API_TOKEN": "from-env",
                                  "STORE_SIGNING_SECRET": "signing-from-env", "REDIS_URL": "redis://redis.internal:6379/0"})
    monkeypatch.setenv("CONSOLE_SESSION_KEY", Fernet.generate_key().decode())
    assert runner.api_token(settings) == "from-env"
    assert runner.signing_secret(settings) == "signing-from-env"
    assert config_from_env(settings).rasa_token == "from-env"
    assert list(tmp_path.iterdir()) == []  # nothing written when the environment supplies them

    monkeypatch.delenv("CONSOLE_SESSION_KEY")
    generated = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    secret = runner.signing_secret(generated)
    config_from_env(generated)
    assert len(secret) >= 32 and secret != runner.signing_secret(Settings.from_env(
        {"XIAOBAO_VAR_DIR": str(tmp_path / "elsewhere")}))
    for name in ("store_signing_secret", "console_session_key", "redis_password"):  # no REDIS_URL: embedded
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
