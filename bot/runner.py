"""`make run`: Redis, the action server and the Rasa server, trained first if stale.

What it prints. A few progress lines, then the ready message: the three addresses to open (web
chat, console, REST) first, then how to add an agent and a demo shopper's token. The children's
own output (Rasa's, TensorFlow's and Sanic's warnings, the action server's registrations, the
console's access log) goes to one file per process in var/logs/ (XIAOBAO_VAR_DIR/logs), appended
to, each run starting with a header line; a file over LOG_ROTATE_BYTES is moved to NAME.log.1 when
`make run` starts. If a child exits, or does not become ready, the runner prints the last lines
its log got in this run and exits with status 1.

Stopping. The first SIGINT (Ctrl-C), SIGTERM or SIGHUP starts one shutdown; any signal after
that is noted and ignored, so it cannot cut the shutdown short. That matters: `docker stop`,
systemd and CI time-outs send SIGTERM to the whole process group, and GNU make then sends the
runner a second SIGTERM of its own; people press Ctrl-C twice. The shutdown stops Rasa, the
action server and the web app at the same time (SIGTERM to each one's process group, SIGKILL
to what is left after CHILD_STOP_TIMEOUT_S), then Redis, well within 20 seconds in all.

Each child leads its own process group, and stopping it stops the whole group, so whatever a
child starts is stopped with it. If the runner itself is killed (SIGKILL, the OOM killer), two
things stop the children: bot.stack.Watchdog, a small process that sees the runner's pipe close
and stops every registered process group (SIGTERM, then SIGKILL after 10 s); and Linux, which
sends each child SIGTERM when the runner dies (PR_SET_PDEATHSIG, bot.stack.die_with_parent).
Linux sends that when the *thread* that started the child exits, so every child is started from
the runner's main thread, which lives as long as the runner does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Dict, List, Optional

from bot.model import ensure_trained
from bot.paths import ROOT
from bot.redis_server import EmbeddedRedis
from bot.settings import (  # noqa: F401 (re-exported)
    Settings, api_token, persisted_secret, redis_password, risk_pseudonym_key, signing_secret,
)
from bot.stack import (
    STOP_TIMEOUT_S, ManagedProcess, Watchdog, action_server, console_server, die_with_parent, rasa_server,
    service_env,
)

READY_TIMEOUT_S = 180
CHILD_STOP_TIMEOUT_S = STOP_TIMEOUT_S  # Rasa, the action server and the web app, stopped together
REDIS_STOP_TIMEOUT_S = 5.0  # then Redis, which saves its append-only file
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LOG_ROTATE_BYTES = 10 * 1024 * 1024  # checked when make run starts; one older file is kept
TAIL_LINES = 30  # of a failed child's log, printed to the terminal
# The file in var/logs/ for each child, by ManagedProcess.name.
LOG_FILES = {"action server": "actions.log", "rasa server": "rasa.log", "agent console": "console.log"}


def action_server_env(env: Dict[str, str]) -> Dict[str, str]:
    """The action server's environment. rasa_sdk listens on SANIC_HOST, all interfaces when it is
    unset; only Rasa calls it, and it has no authentication, so it stays on loopback."""
    return {**env, "SANIC_HOST": env.get("SANIC_HOST") or "127.0.0.1"}


def prepare_knowledge(logs: Optional["ChildLogs"] = None) -> None:
    """The knowledge base's sentence vectors, computed once and cached by fingerprint, so the
    action server does not embed ~2,000 passages while Rasa waits for it. With `logs`, its output
    goes to knowledge.log and only its summary line (or, if it fails, its log's tail) is printed;
    a failure is not fatal: the action server embeds the passages itself."""
    command = die_with_parent([sys.executable, "-m", "bot.knowledge", "embed"])
    if logs is None:
        subprocess.run(command, cwd=ROOT, check=False)
        return
    with logs.open("knowledge.log") as log:
        done = subprocess.run(command, cwd=ROOT, check=False, stdout=log, stderr=subprocess.STDOUT)
    summary = [line for line in logs.since_start("knowledge.log").splitlines() if line.startswith("knowledge-base")]
    if done.returncode == 0:
        if summary:
            print(summary[-1])
    else:
        print(f"knowledge-base vectors not prepared (exit code {done.returncode}); the action server "
              f"will compute them", file=sys.stderr)
        print(logs.tail("knowledge.log"), file=sys.stderr)


class ChildLogs:
    """One log file per child process in `directory` (see the module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.starts: Dict[str, int] = {}  # where this run's part of each file begins

    def path(self, name: str) -> Path:
        return self.directory / name

    def open(self, name: str) -> IO[bytes]:
        """The file, opened for appending (rotated first if it is too big), after a header line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # conversations' traces may end up in a log
        path = self.path(name)
        if name not in self.starts and path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        handle = open(path, "ab")
        handle.write(f"\n==== make run, {time.strftime('%Y-%m-%d %H:%M:%S %z')} ====\n".encode())
        handle.flush()
        self.starts.setdefault(name, handle.tell())
        return handle

    def since_start(self, name: str) -> str:
        try:
            with open(self.path(name), "rb") as handle:
                handle.seek(self.starts.get(name, 0))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, name: str, lines: int = TAIL_LINES) -> str:
        """The last lines this run wrote to the file, headed by its path."""
        text = self.since_start(name).rstrip("\n")
        if not text.strip():
            return f"({shown(self.path(name))} is empty)"
        last = text.splitlines()[-lines:]
        return "\n".join([f"last lines of {shown(self.path(name))}:", *("  " + line for line in last)])


def shown(path: Path) -> Path:
    """path relative to the repository when it is inside it (var/logs/rasa.log), else absolute."""
    path = Path(path)
    return path.relative_to(ROOT) if path.is_absolute() and path.is_relative_to(ROOT) else path


def report_failure(child: ManagedProcess, what: str, logs: ChildLogs) -> None:
    """What went wrong, and the end of the child's log, on stderr."""
    _say(what, sys.stderr)
    _say(logs.tail(LOG_FILES.get(child.name, child.name + ".log")), sys.stderr)


def how_to_chat(settings: Settings, logs_dir: Path) -> str:
    """The ready message: the addresses to open first, then the few things to know."""
    web = f"http://127.0.0.1:{settings.web_port}"
    demo = "  (a logged-in demo shopper: /shop?customer=c1001)" if settings.demo else ""
    token = "RASA_API_TOKEN" if settings.rasa_api_token else shown(settings.var_dir / "rasa_api_token")
    return f"""
小保 is ready. Open:
  web chat:  {web}/shop{demo}
  console:   {web}/
  REST:      http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook
Add an agent: .venv/bin/python -m bot.console add-agent NAME [--role supervisor]
Demo shopper over REST: add "metadata": {{"customer_token": "<token>"}} to the body, with a token
  from `.venv/bin/python -m bot.identity c1001` (demo customers c1001, c1002)
API token: {token}; logs: {shown(logs_dir)}/; socket.io and `rasa shell`: README, "Chatting"."""


class Shutdown:
    """Turns the first stop signal into KeyboardInterrupt and ignores the rest (see the module's
    docstring). `begin()` marks the shutdown as started when it starts for another reason."""

    def __init__(self) -> None:
        self.begun = False
        self.ignored = 0

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # started under nohup: stay that way
            signal.signal(signum, self._on_signal)

    def begin(self) -> bool:
        """Marks the shutdown as begun; False if it had begun already."""
        first, self.begun = not self.begun, True
        return first

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.begin():
            raise KeyboardInterrupt
        self.ignored += 1
        # os.write, not print: print is not reentrant, and the main thread may be inside one.
        try:
            os.write(2, f"{signal.Signals(signum).name} while stopping: already stopping\n".encode())
        except OSError:
            pass


def _say(text: str, stream=None) -> None:
    """print() for the shutdown path: a closed terminal or pipe must not stop it."""
    try:
        print(text, file=stream or sys.stdout, flush=True)
    except (OSError, ValueError):
        pass


def stop_children(children: List[ManagedProcess], redis: Optional[EmbeddedRedis]) -> None:
    """Stops the servers in parallel, SIGKILLs any still running at the deadline, then Redis.
    Idempotent; a child that was never started is skipped."""
    threads = []
    for child in children:
        thread = threading.Thread(target=_stop_one, args=(child,), name=f"stop {child.name}", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + CHILD_STOP_TIMEOUT_S + 2
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.running():
            _say(f"{child.name} still running after {CHILD_STOP_TIMEOUT_S:.0f}s: SIGKILL", sys.stderr)
            child.kill()
    if redis is not None:
        redis.stop(REDIS_STOP_TIMEOUT_S)


def _stop_one(child: ManagedProcess) -> None:
    try:
        child.stop()  # SIGTERM, SIGKILL after CHILD_STOP_TIMEOUT_S
    except Exception as error:  # the deadline and SIGKILL in stop_children still apply
        _say(f"stopping {child.name}: {error!r}", sys.stderr)


def main() -> int:
    settings = Settings.from_env()
    try:
        settings.allowed_origins  # exact origins only, checked before anything starts
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    shutdown = Shutdown()
    shutdown.install()  # before any child exists
    watchdog = Watchdog().start()
    token = api_token(settings)
    logs = ChildLogs(settings.var_dir / "logs")
    log_files: List[IO[bytes]] = []
    started_at = time.monotonic()
    redis: Optional[EmbeddedRedis] = None
    children: List[ManagedProcess] = []
    status = 1
    try:
        if settings.redis_url:
            redis_url = settings.redis_url
            print("using Redis at REDIS_URL")
        else:
            # Assigned before it starts, so a stop signal during start() still finds it.
            redis = EmbeddedRedis(settings.embedded_redis_port, settings.embedded_redis_dir, redis_password(settings))
            print(f"starting Redis on 127.0.0.1:{redis.port} (data in {shown(redis.data_dir)}) ...", flush=True)
            try:
                redis.start()
            except (RuntimeError, TimeoutError) as error:
                _say(f"Redis did not start: {error}", sys.stderr)
                return 1  # the finally below still stops it
            watchdog.watch(redis.process.pid)
            redis_url = redis.url
        model = ensure_trained(settings)
        prepare_knowledge(logs)
        env = {**service_env(redis_url, settings.action_port), "STORE_SIGNING_SECRET": signing_secret(settings),
               "RISK_PSEUDONYM_KEY": risk_pseudonym_key(settings), "RASA_API_TOKEN": token, "RASA_URL": f"http://127.0.0.1:{settings.rasa_port}",
               "PYTHONUNBUFFERED": "1"}  # their logs are files: a crash's last words are not left in a buffer
        ready_from = time.monotonic()

        def log(name: str) -> IO[bytes]:
            log_files.append(logs.open(LOG_FILES[name]))
            return log_files[-1]

        children.append(action_server(settings.action_port, action_server_env(env), output=log("action server")))
        children.append(
            rasa_server(
                model, settings.rasa_port, token, env,
                bind_host=settings.bind_host, cors_origins=settings.cors_origins, output=log("rasa server"),
            )
        )
        children.append(console_server(settings.web_port, env, output=log("agent console")))
        print(f"starting 小保: action server, Rasa, agent console (logs in {shown(logs.directory)}/: "
              f"{', '.join(LOG_FILES[child.name] for child in children)}) ...", flush=True)
        for child in children:  # listed before started: a stop signal during start() finds them
            child.start()
            process = getattr(child, "process", None)
            if process is not None:
                watchdog.watch(process.pid)  # its process group
        for child in children:
            try:
                child.wait_ready(READY_TIMEOUT_S)
            except (RuntimeError, TimeoutError) as error:
                report_failure(child, f"{child.name} did not start: {error}; stopping the rest", logs)
                return 1
        print(how_to_chat(settings, logs.directory))
        print(f"ready in {time.monotonic() - ready_from:.1f}s after start of servers "
              f"({time.monotonic() - started_at:.1f}s in all); Ctrl-C to stop", flush=True)
        while all(child.running() for child in children):
            time.sleep(0.5)
        stopped = next(child for child in children if not child.running())
        code = getattr(getattr(stopped, "process", None), "returncode", None)
        report_failure(stopped, f"{stopped.name} exited unexpectedly (exit code {code}); stopping the rest", logs)
    except KeyboardInterrupt:
        status = 0
    finally:
        # Retried if a signal slips in before shutdown.begin() has run; after that the handler
        # raises nothing, and stop_children may safely run again.
        while True:
            try:
                shutdown.begin()
                _say("\nstopping ...")
                stop_children(children, redis)
                watchdog.close()
                break
            except KeyboardInterrupt:
                status = 0
        for handle in log_files:  # the children had their own copies
            handle.close()
        if shutdown.ignored:
            _say(f"stopped; {shutdown.ignored} more stop signal(s) ignored while stopping")
    return status


if __name__ == "__main__":
    sys.exit(main())
