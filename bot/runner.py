"""`make run`: Redis, the action server and the Rasa server, trained first if stale.

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
from typing import Dict, List, Optional

from bot.model import ensure_trained
from bot.paths import ROOT
from bot.redis_server import EmbeddedRedis
from bot.redis_url import masked_url
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


def action_server_env(env: Dict[str, str]) -> Dict[str, str]:
    """The action server's environment. rasa_sdk listens on SANIC_HOST, all interfaces when it is
    unset; only Rasa calls it, and it has no authentication, so it stays on loopback."""
    return {**env, "SANIC_HOST": env.get("SANIC_HOST") or "127.0.0.1"}


def prepare_knowledge() -> None:
    """The knowledge base's sentence vectors, computed once and cached by fingerprint, so the
    action server does not embed ~2,000 passages while Rasa waits for it."""
    subprocess.run(die_with_parent([sys.executable, "-m", "bot.knowledge", "embed"]), cwd=ROOT, check=False)


def how_to_chat(settings: Settings, model: Path, redis_url: str) -> str:
    rel_model = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    return f"""
小保 is ready.
  REST:      curl -s -XPOST http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook \\
               -H 'Content-Type: application/json' -d '{{"sender":"me","message":"你好"}}'
  socket.io: http://127.0.0.1:{settings.rasa_port}/socket.io  (events user_uttered / bot_uttered)
  terminal:  REDIS_URL={masked_url(redis_url)} ACTION_ENDPOINT_URL={settings.action_endpoint_url} \\
               .venv/bin/rasa shell --model {rel_model} --endpoints endpoints.yml --port {settings.rasa_port + 1}
  console:   http://127.0.0.1:{settings.web_port}  (create an agent first:
               .venv/bin/python -m bot.console add-agent NAME)
  HTTP API:  token in {'RASA_API_TOKEN' if settings.rasa_api_token else settings.var_dir / 'rasa_api_token'}
  logged-in demo shopper: add "metadata": {{"customer_token": "<token>"}} to the REST body, with a
             token from `.venv/bin/python -m bot.identity c1001` (demo customers c1001, c1002)
Press Ctrl-C to stop.
"""


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
            redis.start()
            watchdog.watch(redis.process.pid)
            redis_url = redis.url
            print(f"started embedded Redis on 127.0.0.1:{redis.port} (data in {redis.data_dir}; "
                  f"password in {settings.var_dir / 'redis_password'})")
        model = ensure_trained(settings)
        prepare_knowledge()
        env = {**service_env(redis_url, settings.action_port), "STORE_SIGNING_SECRET": signing_secret(settings),
               "RISK_PSEUDONYM_KEY": risk_pseudonym_key(settings), "RASA_API_TOKEN": token, "RASA_URL": f"http://127.0.0.1:{settings.rasa_port}"}
        ready_from = time.monotonic()
        children.append(action_server(settings.action_port, action_server_env(env)))
        children.append(
            rasa_server(
                model, settings.rasa_port, token, env,
                bind_host=settings.bind_host, cors_origins=settings.cors_origins,
            )
        )
        children.append(console_server(settings.web_port, env))
        for child in children:  # listed before started: a stop signal during start() finds them
            child.start()
            process = getattr(child, "process", None)
            if process is not None:
                watchdog.watch(process.pid)  # its process group
        for child in children:
            child.wait_ready(READY_TIMEOUT_S)
        print(how_to_chat(settings, model, redis_url))
        print(f"ready in {time.monotonic() - ready_from:.1f}s after start of servers "
              f"({time.monotonic() - started_at:.1f}s in all)", flush=True)
        while all(child.running() for child in children):
            time.sleep(0.5)
        stopped = next(child for child in children if not child.running())
        print(f"{stopped.name} exited unexpectedly; stopping the rest", file=sys.stderr)
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
        if shutdown.ignored:
            _say(f"stopped; {shutdown.ignored} more stop signal(s) ignored while stopping")
    return status


if __name__ == "__main__":
    sys.exit(main())
