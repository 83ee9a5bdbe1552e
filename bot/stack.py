"""Starting and stopping the assistant's processes: action server and Rasa server.

Used by the `make run` runner and by the integration tests, so both run the same commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, List, Optional, Union

from bot.paths import ROOT

STOP_TIMEOUT_S = 10.0  # from SIGTERM to SIGKILL


# Runs in a fresh interpreter between fork and the real program: asks Linux to send SIGTERM to this
# process when its parent dies (PR_SET_PDEATHSIG = 1), then execs the program, which keeps the
# setting (the pid stays the same). argv: parent pid, program, arguments. A wrapper rather than a
# preexec_fn, which is unsafe once the parent has threads (the runner has: TensorFlow's, the stop
# threads). If the parent is already gone by the time prctl ran, the program is not started.
_PARENT_DEATH_GUARD = """
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0) != 0:
    sys.exit("PR_SET_PDEATHSIG failed: " + os.strerror(ctypes.get_errno()))
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent exited before " + sys.argv[2] + " started")
os.execvp(sys.argv[2], sys.argv[2:])
"""


def die_with_parent(command: List[str]) -> List[str]:
    """`command` wrapped so that the process gets SIGTERM when the process starting it dies, even
    by SIGKILL (Linux's PR_SET_PDEATHSIG).

    Linux sends that signal when the parent *thread* exits, not the parent process: so the wrapper
    is used only when called from the main thread (the runner starts every child from it, and the
    main thread lives as long as the process). From any other thread (a test restarting Redis from
    a timer, say) the command is returned unchanged, or the child would die with that thread.
    Grandchildren are not covered by the signal: ManagedProcess stops each child's whole process
    group, and so does the runner's Watchdog if the runner dies.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return list(command)
    return [sys.executable, "-I", "-S", "-c", _PARENT_DEATH_GUARD, str(os.getpid()), *command]


def signal_group(pgid: int, signum: int) -> bool:
    """Sends signum to process group pgid; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid was reused by someone else's group: not ours to signal
        return False


def stop_process_group(process: subprocess.Popen, timeout_s: float, signum: int = signal.SIGTERM) -> None:
    """Stops a child started with start_new_session=True and everything it started: signum to its
    process group, SIGKILL to the group after timeout_s, and SIGKILL to whatever is left in the
    group (grandchildren) once the leader has exited. Safe to call again and from several threads."""
    if process.poll() is None:
        signal_group(process.pid, signum)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
    # The group id cannot be reused while anything is still in the group, so this reaches only
    # stragglers of this child (a no-op, ESRCH, when there are none).
    signal_group(process.pid, signal.SIGKILL)


# The watchdog's program (see Watchdog). stdin carries "+<pgid>" (watch that process group) and
# "bye" (all stopped normally); EOF without "bye" means the runner died without stopping them.
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
grace, groups = float(sys.argv[1]), set()
for line in sys.stdin:
    line = line.strip()
    if line == "bye":
        sys.exit(0)
    if line[:1] == "+" and line[1:].isdigit():
        groups.add(int(line[1:]))

def alive(pgid, signum=0):
    try:
        os.killpg(pgid, signum)
        return True
    except OSError:
        return False

groups = {pgid for pgid in groups if alive(pgid, signal.SIGTERM)}
deadline = time.monotonic() + grace
while groups and time.monotonic() < deadline:
    time.sleep(0.1)
    groups = {pgid for pgid in groups if alive(pgid)}
for pgid in groups:
    alive(pgid, signal.SIGKILL)
"""


class Watchdog:
    """A small process that outlives the runner only to stop what the runner started.

    The runner registers each child's process group. If the runner dies without saying "bye"
    (SIGKILL, the OOM killer, a crash), the watchdog's stdin reaches EOF, and it sends SIGTERM to
    every registered group, grandchildren included, and SIGKILL to whatever is left after
    grace_s. It is a pipe, not PR_SET_PDEATHSIG, so it does not depend on which thread started
    what; the children also have PR_SET_PDEATHSIG (die_with_parent) in case the watchdog is gone.
    """

    def __init__(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        self.grace_s = grace_s
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "Watchdog":
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(self.grace_s)],
            stdin=subprocess.PIPE, start_new_session=True,  # its own session: Ctrl-C does not reach it
        )
        return self

    def _send(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(f"{line}\n".encode())
            self.process.stdin.flush()
        except (OSError, ValueError):  # the watchdog is gone: PR_SET_PDEATHSIG still applies
            pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def close(self) -> None:
        """Everything was stopped normally: the watchdog exits without touching anything."""
        if self.process is None:
            return
        self._send("bye")
        try:
            self.process.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class ManagedProcess:
    """A server process: the leader of its own process group (so Ctrl-C in a terminal reaches only
    the runner, and stopping it stops what it started too), and, when started from the main
    thread, sent SIGTERM by Linux if the process that started it dies (see die_with_parent)."""

    name: str
    command: List[str]
    env: Dict[str, str]
    ready_url: str
    output: Union[int, IO, None] = None
    process: Optional[subprocess.Popen] = field(default=None, init=False)
    _stop_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def start(self) -> "ManagedProcess":
        self.process = subprocess.Popen(
            die_with_parent(self.command),
            cwd=ROOT,
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output is not None else None,
            start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> float:
        """Polls ready_url until it answers 200; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if not self.running():
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready after {timeout_s:.0f}s ({self.ready_url})")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to the process group, SIGKILL after timeout_s; idempotent and thread-safe."""
        if self.process is None:
            return
        with self._stop_lock:
            stop_process_group(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL to the whole process group, at once (a stop that ran out of time)."""
        if self.process is not None:
            signal_group(self.process.pid, signal.SIGKILL)


WECHAT_DEFAULTS = {"WECHAT_TOKEN": "", "WECHAT_APPID": "", "WECHAT_SECRET": "", "WECHAT_AES_KEY": "",
                   "WECHAT_API_BASE": "https://api.weixin.qq.com"}


def service_env(redis_url: str, action_port: int) -> Dict[str, str]:
    """The environment that endpoints.yml and credentials.yml expect, on top of ours."""
    return {
        **WECHAT_DEFAULTS,
        **os.environ,
        "REDIS_URL": redis_url,
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        # No phoning home: the machines have no internet and shoppers' data stays here.
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONPATH": str(ROOT),
        # One TensorFlow thread per op: Rasa serves many small predictions at once next to the
        # action server, and TF's default (a thread per core) makes them queue for each other.
        # `make bench` measured 0.62x -> 0.72x of bare Rasa's throughput at 32 shoppers with this.
        "TF_INTRA_OP_PARALLELISM_THREADS": os.environ.get("TF_INTRA_OP_PARALLELISM_THREADS", "1"),
        "TF_INTER_OP_PARALLELISM_THREADS": os.environ.get("TF_INTER_OP_PARALLELISM_THREADS", "1"),
        # rasa_sdk's Sanic listens on SANIC_HOST, every interface when unset; it has no auth.
        "SANIC_HOST": os.environ.get("SANIC_HOST") or "127.0.0.1",
    }


def action_server(port: int, env: Dict[str, str], output: Union[int, IO, None] = None) -> ManagedProcess:
    return ManagedProcess(
        name="action server",
        command=[sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
        output=output,
    )


def rasa_server(
    model: Path,
    port: int,
    token: str,
    env: Dict[str, str],
    *,
    bind_host: str = "127.0.0.1",
    cors_origins: str = "",
    endpoints: str = "endpoints.yml",
    credentials: str = "credentials.yml",
    output: Union[int, IO, None] = None,
) -> ManagedProcess:
    command = [
        sys.executable, "-m", "rasa", "run",
        "--model", str(model),
        "--endpoints", endpoints,
        "--credentials", credentials,
        "--interface", bind_host,
        "--port", str(port),
        "--enable-api",
        "--auth-token", token,
    ]
    origins = cors_origins.split()
    if origins:
        command += ["--cors", *origins]
    return ManagedProcess(
        name="rasa server",
        command=command,
        env=env,
        ready_url=f"http://127.0.0.1:{port}/status?token={token}",
        output=output,
    )



def console_server(port: int, env: Dict[str, str], output: Union[int, IO, None] = None) -> ManagedProcess:
    return ManagedProcess(
        name="agent console",
        command=[sys.executable, "-m", "bot.console", "serve"],
        env={**env, "WEB_PORT": str(port)},
        ready_url=f"http://127.0.0.1:{port}/login",
        output=output,
    )
