"""`make run`'s runner: settings, the API token, and stopping (issue 12)."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List

import psutil
import pytest

from bot.paths import ROOT
from bot.runner import api_token
from bot.settings import Settings
from tests.conftest import free_port


def test_api_token_is_generated_once_and_kept_private(tmp_path):
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    token = api_token(settings)
    assert len(token) >= 32
    assert api_token(settings) == token
    assert (tmp_path / "rasa_api_token").stat().st_mode & 0o077 == 0


def test_api_token_from_the_environment_wins(tmp_path):
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "RASA_API_TOKEN": "s3cret"})
    assert api_token(settings) == "s3cret"
    assert not (tmp_path / "rasa_api_token").exists()


def test_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.rasa_port, settings.action_port, settings.web_port) == (5005, 5055, 8000)
    assert settings.redis_url is None
    assert settings.action_endpoint_url == "http://127.0.0.1:5055/webhook"
    assert "http://localhost:8000" in settings.cors_origins.split()


# -- stopping `make run` (issue 12) -----------------------------------------------------------
# Whatever stops it — SIGTERM to its process group (docker stop, systemd, CI time-outs, `kill`
# of a job, and GNU make then sends the runner a second SIGTERM), Ctrl-C twice, SIGTERM to the
# runner alone, or SIGKILL to the runner — every process it started is gone and every port free
# within 20 s. The processes are those below the runner just before the signal (psutil).
STOPPED_WITHIN_S = 20
PORT_NAMES = ("RASA_PORT", "ACTION_PORT", "WEB_PORT", "EMBEDDED_REDIS_PORT")


class Launched:
    """A started `make run` (or runner), in a session of its own as a terminal would give it."""

    def __init__(self, command: List[str], env: Dict[str, str]) -> None:
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output: List[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=1).startswith("ready in "):
                    return
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        pytest.fail(f"never ready:\n{self.text()[-4000:]}")

    def text(self) -> str:
        return "".join(self.output)

    def runner(self) -> psutil.Process:
        root = psutil.Process(self.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            if "bot.runner" in " ".join(proc.cmdline()) or "RUNNER_WITH_LIGHT_SERVERS" in " ".join(proc.cmdline()):
                return proc
        raise AssertionError("no runner process")

    def tree(self) -> List[psutil.Process]:
        """make (or the runner), the runner and everything below it, as it is now."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]


def still_running(procs: List[psutil.Process]) -> List[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:  # is_running: same process
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_all_gone(launched: Launched, procs: List[psutil.Process], ports: Dict[str, int], signalled_at: float):
    deadline = signalled_at + STOPPED_WITHIN_S
    while time.monotonic() < deadline:
        if not still_running(procs) and not any(listening(port) for port in ports.values()):
            return time.monotonic() - signalled_at
        time.sleep(0.2)
    left = [f"{p.pid} {' '.join(p.cmdline())[:100]}" for p in still_running(procs)]
    held = [name for name, port in ports.items() if listening(port)]
    pytest.fail(f"{STOPPED_WITHIN_S}s after the signal, still running: {left}; ports held: {held}\n"
                f"output:\n{launched.text()[-3000:]}")


@pytest.fixture
def cleanup():
    """Whatever a failing test leaves behind is killed, so it does not hold ports for others."""
    trees: List[List[psutil.Process]] = []
    yield trees.append
    for procs in trees:
        for proc in still_running(procs):
            try:
                proc.kill()
            except psutil.Error:
                pass


def sigterm_to_the_group(launched: Launched) -> None:
    os.killpg(launched.process.pid, signal.SIGTERM)  # docker stop, systemd, a CI time-out


def sigint_twice(launched: Launched) -> None:
    os.killpg(launched.process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole group
    time.sleep(0.3)
    os.killpg(launched.process.pid, signal.SIGINT)


def sigterm_to_the_runner(launched: Launched) -> None:
    os.kill(launched.runner().pid, signal.SIGTERM)


def sigkill_to_the_runner(launched: Launched) -> None:
    os.kill(launched.runner().pid, signal.SIGKILL)


def stop_and_check(launched: Launched, stop: Callable[[Launched], None], ports: Dict[str, int]) -> float:
    procs = launched.tree()
    stop(launched)
    return assert_all_gone(launched, procs, ports, time.monotonic())


# The real `make run`: Redis (embedded: REDIS_URL unset), the action server, Rasa, the web app.
@pytest.fixture(scope="module")
def trained_model():
    from bot.model import ensure_trained

    return ensure_trained(Settings.from_env())  # so that `make run` below only loads it


@pytest.mark.integration
@pytest.mark.parametrize("stop", [sigterm_to_the_group, sigint_twice, sigkill_to_the_runner])
def test_make_run_leaves_nothing_running_however_it_is_stopped(stop, trained_model, tmp_path, cleanup):
    ports = {name: free_port() for name in PORT_NAMES}
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "XIAOBAO_VAR_DIR": str(tmp_path)}
    for name in ("REDIS_URL", "RASA_API_TOKEN", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(name, None)
    launched = Launched(["make", "--no-print-directory", "run"], env)
    cleanup(launched.tree())
    launched.wait_ready(300)
    procs = launched.tree()
    cleanup(procs)
    commands = [" ".join(p.cmdline()) for p in procs]
    for program in ("bot.runner", "redis-server", "rasa run", "rasa_sdk", "bot.console serve"):
        assert any(program in command for command in commands), (program, commands)
    assert all(listening(port) for port in ports.values())
    stop_and_check(launched, stop, ports)


# The same runner with light servers in place of Rasa, the action server and the web app: each
# takes 2 s to stop after SIGTERM, as Rasa does, and has started a process of its own that
# ignores SIGTERM. Redis is the real embedded one.
LIGHT_SERVER = """
import http.server, signal, subprocess, sys, time
port = int(sys.argv[1])
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
def slow_stop(signum, frame):
    time.sleep(2)
    sys.exit(0)
signal.signal(signal.SIGTERM, slow_stop)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Ok).serve_forever()
"""

RUNNER_WITH_LIGHT_SERVERS = f"""
# RUNNER_WITH_LIGHT_SERVERS
import sys
from pathlib import Path
from bot import runner
from bot.stack import ManagedProcess

def light(name):
    def build(*args, **kwargs):
        port = kwargs.get("port") or [a for a in args if isinstance(a, int)][0]
        env = [a for a in args if isinstance(a, dict)][0]
        return ManagedProcess(name=name, command=[sys.executable, "-c", {LIGHT_SERVER!r}, str(port)],
                              env=env, ready_url=f"http://127.0.0.1:{{port}}/")
    return build

runner.action_server = light("action server")
runner.rasa_server = light("rasa server")
runner.console_server = light("agent console")
runner.ensure_trained = lambda settings: Path("models/light.tar.gz")
runner.prepare_knowledge = lambda: None
sys.exit(runner.main())
"""


@pytest.mark.parametrize(
    "stop", [sigterm_to_the_group, sigint_twice, sigterm_to_the_runner, sigkill_to_the_runner])
def test_runner_stops_its_servers_and_what_they_started(stop, tmp_path, cleanup):
    ports = {name: free_port() for name in PORT_NAMES}
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "XIAOBAO_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    launched = Launched([sys.executable, "-c", RUNNER_WITH_LIGHT_SERVERS], env)
    cleanup(launched.tree())
    launched.wait_ready(60)
    procs = launched.tree()
    cleanup(procs)
    grandchildren = [p for p in procs if p.cmdline()[-1].startswith("import signal, time;")]
    assert len(grandchildren) == 3, [p.cmdline() for p in procs]
    assert any("redis-server" in " ".join(p.cmdline()) for p in procs)
    stop_and_check(launched, stop, ports)
