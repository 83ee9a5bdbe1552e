"""Starting and stopping the assistant's processes: action server and Rasa server.

Used by the `make run` runner and by the integration tests, so both run the same commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Dict, List, Optional, Union

from bot.paths import ROOT


@dataclass
class ManagedProcess:
    name: str
    command: List[str]
    env: Dict[str, str]
    ready_url: str
    output: Union[int, IO, None] = None
    process: Optional[subprocess.Popen] = field(default=None, init=False)

    def start(self) -> "ManagedProcess":
        # A new session: Ctrl-C reaches only the runner, which stops children in order.
        self.process = subprocess.Popen(
            self.command,
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

    def stop(self, timeout_s: float = 15.0) -> None:
        if not self.running():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


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
