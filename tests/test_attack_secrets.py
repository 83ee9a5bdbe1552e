"""Finding "secrets-and-redis-password" (issue 13): secret files were written before chmod 600,
var/ was world-readable, and the embedded Redis (every conversation, ticket and lock) took
commands from any local process without a password."""

from __future__ import annotations

import os
import stat

import pytest
import redis

from bot.console.__main__ import embedded_redis
from bot.settings import Settings, api_token, console_session_key, redis_password, signing_secret
from tests.conftest import free_port

pytestmark = pytest.mark.attack("secrets-and-redis-password")


def settings_in(tmp_path, **extra) -> Settings:
    return Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path / "var"), "EMBEDDED_REDIS_PORT": str(free_port()), **extra})


def test_the_embedded_redis_refuses_clients_without_its_password(tmp_path):
    settings = settings_in(tmp_path)
    server = embedded_redis(settings).start()  # what `make run` and `add-agent` start
    try:
        anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("xiaobao:events:{victim}", "forged")
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):  # a wrong one too
            redis.Redis(host="127.0.0.1", port=server.port, password="guess").ping()
        assert redis.Redis.from_url(server.url).ping()  # the URL the stack is given carries it
        assert redis_password(settings) not in " ".join(open(f"/proc/{server.process.pid}/cmdline").read().split("\0"))
    finally:
        server.stop()


def test_secrets_and_var_are_private_from_the_first_byte(tmp_path):
    old_umask = os.umask(0)  # the most permissive umask a service could run under
    try:
        settings = settings_in(tmp_path)
        for make in (api_token, signing_secret, console_session_key, redis_password):
            make(settings)
    finally:
        os.umask(old_umask)
    var = tmp_path / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for path in var.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
