"""Security of the running servers (issue 7, docs/SECURITY.md), against real processes:

- Rasa's HTTP API refuses requests without the token or with a wrong one, and works with it;
- the token never reaches the logs;
- Rasa and the action server listen on loopback only, started the way `make run` starts them;
- CORS: Rasa answers a configured origin and nobody else (a second, model-less Rasa server with
  `--cors`, as `make run` passes CORS_ORIGINS).
Log masking of personal data: tests/test_privacy.py and test_stack.py::test_server_logs_mask_personal_data.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Dict, Iterator, Optional, Tuple

import psutil
import pytest

from bot.runner import action_server_env
from bot.stack import ManagedProcess, action_server, rasa_server
from tests.conftest import free_port

SHOP = "https://shop.example.com"
EVIL = "https://evil.example"
WRONG_TOKEN = "not-the-token"

Response = Tuple[int, Dict[str, str], str]


def call(url: str, method: str = "GET", body: object = None, headers: Optional[Dict[str, str]] = None) -> Response:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode(errors="replace")


def with_token(path: str, token: Optional[str]) -> str:
    return path if token is None else path + ("&" if "?" in path else "?") + f"token={token}"


def sensitive(sender: str):
    """The HTTP API routes that read or change conversations or the model (method, path, body)."""
    return [
        ("GET", "/status", None),
        ("GET", f"/conversations/{sender}/tracker", None),
        ("POST", f"/conversations/{sender}/execute", {"name": "action_restart"}),
        ("POST", f"/conversations/{sender}/tracker/events", [{"event": "pause"}]),
        ("PUT", f"/conversations/{sender}/tracker/events", [{"event": "pause"}]),
        ("POST", f"/conversations/{sender}/predict", None),
        ("POST", f"/conversations/{sender}/trigger_intent", {"name": "greet"}),
        ("POST", f"/conversations/{sender}/messages", {"text": "你好", "sender": "user"}),
        ("GET", f"/conversations/{sender}/story", None),
        ("PUT", "/model", {"model_file": "/tmp/not-a-model.tar.gz"}),
        ("DELETE", "/model", None),
        ("POST", "/model/parse", {"text": "你好"}),
        ("POST", "/model/train", {}),
        ("POST", "/model/predict", []),
        ("POST", "/model/test/stories", None),
        ("POST", "/model/test/intents", None),
        ("GET", "/domain", None),
    ]


def test_http_api_refuses_missing_and_wrong_tokens(stack):
    base = f"http://127.0.0.1:{stack.rasa_port}"
    sender = f"sec-{uuid.uuid4().hex[:8]}"
    for method, path, body in sensitive(sender):
        for token, headers in ((None, {}), (WRONG_TOKEN, {}), (None, {"Authorization": f"Bearer {stack.token}"})):
            status, _, text = call(base + with_token(path, token), method, body, headers)
            assert status in (401, 403), (method, path, token, headers, status, text[:200])
    # Nothing reached the conversation: no pause, no message, no restart.
    status, _, text = call(base + with_token(f"/conversations/{sender}/tracker", stack.token))
    assert status == 200
    assert not {e["event"] for e in json.loads(text)["events"]} & {"pause", "user", "bot", "restart"}


def test_http_api_works_with_the_token(stack):
    base = f"http://127.0.0.1:{stack.rasa_port}"
    sender = f"sec-{uuid.uuid4().hex[:8]}"
    status, _, text = call(base + with_token("/status", stack.token))
    assert status == 200 and json.loads(text)["model_file"].endswith(stack.model.name)
    status, _, text = call(base + with_token(f"/conversations/{sender}/tracker", stack.token))
    assert status == 200 and json.loads(text)["sender_id"] == sender
    stack.send(sender, "你好")  # /execute needs an existing conversation
    status, _, text = call(base + with_token(f"/conversations/{sender}/execute", stack.token), "POST",
                           {"name": "action_listen"})
    assert status == 200 and json.loads(text)["tracker"]["sender_id"] == sender


def test_loading_a_model_needs_the_token_and_then_gets_past_authentication(cors_rasa):
    port, _, token = cors_rasa
    url = f"http://127.0.0.1:{port}/model"
    body = {"model_file": "/tmp/not-a-model.tar.gz"}
    for wrong in (None, WRONG_TOKEN):
        status, _, text = call(with_token(url, wrong), "PUT", body)
        assert status == 401 and "NotAuthenticated" in text
    status, _, text = call(with_token(url, token), "PUT", body)
    assert status not in (401, 403) and "NotAuthenticated" not in text  # authenticated; the file is refused


def test_the_api_token_never_reaches_the_logs(stack):
    call(f"http://127.0.0.1:{stack.rasa_port}" + with_token("/status", stack.token))
    call(f"http://127.0.0.1:{stack.rasa_port}" + with_token("/status", WRONG_TOKEN))
    for name in ("rasa.log", "actions.log"):
        log = (stack.log_dir / name).read_text(errors="replace")
        assert log, name
        assert stack.token not in log, name


# -- listening addresses -----------------------------------------------------------------------
def listening_addresses(process: ManagedProcess) -> set:
    root = psutil.Process(process.process.pid)
    addresses = set()
    for proc in [root, *root.children(recursive=True)]:
        addresses |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    return addresses


def test_rasa_listens_on_loopback_only(stack, cors_rasa):
    assert listening_addresses(stack.rasa) == {"127.0.0.1"}
    assert listening_addresses(cors_rasa[1]) == {"127.0.0.1"}  # started with make run's defaults


def test_action_server_listens_on_loopback_only_as_make_run_starts_it(stack, tmp_path):
    port = free_port()
    process = action_server(port, action_server_env(stack.env()), output=open(tmp_path / "actions.log", "ab")).start()
    try:
        process.wait_ready(240)
        assert listening_addresses(process) == {"127.0.0.1"}
    finally:
        process.stop()


# -- CORS on a real Rasa server ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cors_rasa(stack, tmp_path_factory) -> Iterator[Tuple[int, ManagedProcess, str]]:
    """A second Rasa server, built like make run's (loopback, API token, CORS_ORIGINS), with no model:
    CORS and authentication happen before any model is involved, and it starts in seconds."""
    folder = tmp_path_factory.mktemp("cors-rasa")
    (folder / "no-model").mkdir()
    port = free_port()
    process = rasa_server(folder / "no-model", port, stack.token, stack.env(),
                          cors_origins=f"{SHOP} http://localhost:8000",
                          output=open(folder / "rasa.log", "ab")).start()
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.running(), (folder / "rasa.log").read_text(errors="replace")[-3000:]
            try:
                if call(f"http://127.0.0.1:{port}/")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the CORS Rasa server did not start"
            time.sleep(0.5)
        yield port, process, stack.token
    finally:
        process.stop()


def preflight(url: str, origin: str) -> Response:
    return call(url, "OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})


def test_cors_allows_the_configured_origin(cors_rasa):
    port = cors_rasa[0]
    for path in ("/webhooks/rest/webhook", "/conversations/someone/tracker"):
        status, headers, _ = preflight(f"http://127.0.0.1:{port}{path}", SHOP)
        assert status in (200, 204) and headers.get("Access-Control-Allow-Origin") == SHOP, (path, status, headers)
    status, headers, _ = call(f"http://127.0.0.1:{port}/version", headers={"Origin": SHOP})
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == SHOP


@pytest.mark.parametrize("origin", [EVIL, SHOP + ".evil.example", "https://shop.example.com.evil.example",
                                    "http://shop.example.com", "null"])
def test_cors_refuses_every_other_origin(cors_rasa, origin):
    port = cors_rasa[0]
    for path in ("/webhooks/rest/webhook", "/conversations/someone/tracker"):
        _, headers, _ = preflight(f"http://127.0.0.1:{port}{path}", origin)
        assert "Access-Control-Allow-Origin" not in headers, (path, headers)
    for path in ("/version", "/socket.io/?EIO=4&transport=polling", with_token("/status", cors_rasa[2])):
        _, headers, _ = call(f"http://127.0.0.1:{port}{path}", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in headers, (path, headers)


def test_without_configured_origins_no_origin_is_allowed(stack):
    # The integration stack starts Rasa without --cors: then even the shop gets no CORS headers.
    _, headers, _ = preflight(f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook", SHOP)
    assert "Access-Control-Allow-Origin" not in headers
