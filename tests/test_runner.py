"""`make run`'s runner: settings, the API token, stopping (issue 12), and what it prints
(issue 16: a few progress lines, the children's logs in var/logs/, the addresses to open)."""

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
import http.server, os, signal, subprocess, sys, threading, time
port = int(sys.argv[1])
if sys.argv[2:] == ["dies"]:  # a crash some seconds after it became ready
    def crash():
        time.sleep(6)
        print("light server: simulated crash", file=sys.stderr, flush=True)
        os._exit(3)
    threading.Thread(target=crash, daemon=True).start()
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
import os, sys
from pathlib import Path
from bot import runner
from bot.stack import ManagedProcess

def light(name):
    def build(*args, **kwargs):
        port = kwargs.get("port") or [a for a in args if isinstance(a, int)][0]
        env = [a for a in args if isinstance(a, dict)][0]
        broken = [os.environ["LIGHT_BROKEN"]] if os.environ.get("LIGHT_BROKEN_NAME") == name else []
        return ManagedProcess(name=name, command=[sys.executable, "-c", {LIGHT_SERVER!r}, str(port), *broken],
                              env=env, ready_url=f"http://127.0.0.1:{{port}}/", output=kwargs.get("output"))
    return build

runner.action_server = light("action server")
runner.rasa_server = light("rasa server")
runner.console_server = light("agent console")
runner.ensure_trained = lambda settings: Path("models/light.tar.gz")
runner.prepare_knowledge = lambda *args: None
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


# -- what `make run` prints (issue 16) ----------------------------------------------------------
# A few progress lines, then the ready message with the three addresses first; the children's
# output (Rasa's, TensorFlow's and Sanic's warnings, the action server's registrations) goes to
# var/logs/, one file per process.
MAX_LINES_BEFORE_READY = 8
READY_MARK = "小保 is ready"


def addresses(ports: Dict[str, int]) -> List[str]:
    return [f"http://127.0.0.1:{ports['WEB_PORT']}/shop", f"http://127.0.0.1:{ports['WEB_PORT']}/",
            f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/rest/webhook"]


@pytest.mark.integration
def test_make_run_is_quiet_and_its_ready_message_starts_with_the_addresses(trained_model, tmp_path, cleanup):
    ports = {name: free_port() for name in PORT_NAMES}
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "XIAOBAO_VAR_DIR": str(tmp_path)}
    for name in ("REDIS_URL", "RASA_API_TOKEN", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(name, None)
    launched = Launched(["make", "--no-print-directory", "run"], env)
    cleanup(launched.tree())
    launched.wait_ready(300)
    cleanup(launched.tree())
    text = launched.text()
    before, mark, ready = text.partition(READY_MARK)
    assert mark, text
    assert len(before.splitlines()) <= MAX_LINES_BEFORE_READY, before
    assert "Warning" not in text and "INFO" not in text, text
    # The three addresses, in this order, are the first lines after the mark.
    first_lines = ready.splitlines()[1:4]
    for line, address in zip(first_lines, addresses(ports)):
        assert address in line.split(), (address, ready)
    assert "--role supervisor" in ready and "bot.identity c1001" in ready, ready
    logs = tmp_path / "logs"
    assert str(logs) in before or "var/logs" in before, before  # the path, printed once
    assert "Rasa server is up and running" in (logs / "rasa.log").read_text()
    assert "Registered function for" in (logs / "actions.log").read_text()
    assert (logs / "console.log").exists()
    stop_and_check(launched, sigterm_to_the_group, ports)


def _run_light(env_extra: Dict[str, str], ports: Dict[str, int], tmp_path) -> Launched:
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "XIAOBAO_VAR_DIR": str(tmp_path),
           **env_extra}
    env.pop("REDIS_URL", None)
    return Launched([sys.executable, "-c", RUNNER_WITH_LIGHT_SERVERS], env)


def test_a_child_that_cannot_bind_its_port_is_reported_with_its_log(tmp_path, cleanup):
    ports = {name: free_port() for name in PORT_NAMES}
    with socket.socket() as taken:  # the web app's port is someone else's
        taken.bind(("127.0.0.1", ports["WEB_PORT"]))
        taken.listen()
        launched = _run_light({}, ports, tmp_path)
        cleanup(launched.tree())
        procs = launched.tree()
        assert launched.process.wait(60) != 0
        text = launched.text()
    assert READY_MARK not in text, text
    assert "agent console" in text and "Address already in use" in text, text
    assert str(tmp_path / "logs" / "console.log") in text, text
    assert "Address already in use" in (tmp_path / "logs" / "console.log").read_text()
    del ports["WEB_PORT"]
    assert_all_gone(launched, procs, ports, time.monotonic())


def test_a_child_that_dies_after_ready_stops_the_rest_and_shows_its_log(tmp_path, cleanup):
    ports = {name: free_port() for name in PORT_NAMES}
    launched = _run_light({"LIGHT_BROKEN_NAME": "rasa server", "LIGHT_BROKEN": "dies"}, ports, tmp_path)
    cleanup(launched.tree())
    launched.wait_ready(60)
    procs = launched.tree()
    cleanup(procs)
    assert launched.process.wait(60) != 0
    text = launched.text()
    after_ready = text.partition(READY_MARK)[2]
    assert "rasa server exited" in after_ready and "simulated crash" in after_ready, text
    assert str(tmp_path / "logs" / "rasa.log") in after_ready, text
    assert_all_gone(launched, procs, ports, time.monotonic())


def test_child_logs_are_appended_rotated_when_big_and_tailed_from_this_run(tmp_path, monkeypatch):
    from bot import runner

    monkeypatch.setattr(runner, "LOG_ROTATE_BYTES", 100)
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    (logs_dir / "rasa.log").write_text("an earlier run\n" * 20)  # 300 bytes: rotated
    (logs_dir / "actions.log").write_text("an earlier run\n")  # small: appended to
    logs = runner.ChildLogs(logs_dir)
    for name in ("rasa.log", "actions.log"):
        with logs.open(name) as handle:
            handle.write(b"".join(f"line {n}\n".encode() for n in range(50)))
    assert (logs_dir / "rasa.log.1").read_text() == "an earlier run\n" * 20
    assert "an earlier run" not in (logs_dir / "rasa.log").read_text()
    assert (logs_dir / "actions.log").read_text().startswith("an earlier run\n")
    tail = logs.tail("actions.log", lines=3).splitlines()
    assert tail == [f"last lines of {logs_dir / 'actions.log'}:", "  line 47", "  line 48", "  line 49"]
    assert "is empty" in runner.ChildLogs(tmp_path / "nowhere").tail("console.log")
