"""`make run`'s runner as a user meets it: start, chat, Ctrl-C, start again."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

from bot.paths import ROOT
from tests.conftest import free_port
from tests.integration.conftest import matches_response

pytestmark = pytest.mark.integration
READY_MARK = "小保 is ready."


class Runner:
    def __init__(self, env):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.runner"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, mark, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if mark in self.lines.get(timeout=1):
                    return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        raise AssertionError(f"runner never printed {mark!r}:\n{''.join(self.output)[-4000:]}")

    def interrupt(self):
        os.kill(self.process.pid, signal.SIGINT)  # what Ctrl-C delivers to the runner
        return self.process.wait(60)


def listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def send(port, sender, text):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_run_chat_stop_and_restart_with_history(tmp_path):
    ports = {name: free_port() for name in ("RASA_PORT", "ACTION_PORT", "EMBEDDED_REDIS_PORT", "WEB_PORT")}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "XIAOBAO_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)  # exercise the embedded Redis that `make run` brings
    env.pop("RASA_API_TOKEN", None)
    sender = f"shopper-{uuid.uuid4().hex[:8]}"

    first = Runner(env)
    first.wait_for(READY_MARK)
    assert "webhooks/rest/webhook" in "".join(first.output)
    (reply,) = send(ports["RASA_PORT"], sender, "你好")
    assert matches_response(reply["text"], "utter_greet")
    token = (tmp_path / "rasa_api_token").read_text().strip()
    assert first.interrupt() == 0
    assert not any(listening(port) for port in ports.values()), "a child outlived Ctrl-C"

    second = Runner(env)
    second.wait_for(READY_MARK)
    assert "model up to date" in "".join(second.output)
    (reply,) = send(ports["RASA_PORT"], sender, "我要退货")
    assert matches_response(reply["text"], "utter_ask_order_id_number")
    url = f"http://127.0.0.1:{ports['RASA_PORT']}/conversations/{sender}/tracker?token={token}"
    with urllib.request.urlopen(url, timeout=30) as response:
        events = json.loads(response.read())["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["你好", "我要退货"]
    assert second.interrupt() == 0
