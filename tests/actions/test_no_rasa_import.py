"""The action server (rasa_sdk) never imports Rasa itself: everything under actions/ and what it
imports stays on rasa_sdk, redis and aiohttp (issue 12: the action server does not import Rasa)."""

from __future__ import annotations

import subprocess
import sys

from bot.paths import ROOT

CHECK = (
    "import actions.rights, actions.orders, actions.returns, actions.handoff, actions.services, "
    "actions.offers, actions.fallback; import sys; "
    "loaded = sorted(m for m in sys.modules if m == 'rasa' or m.startswith('rasa.')); "
    "assert not loaded, loaded"
)


def test_the_action_modules_import_without_rasa():
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_event_log_reader_imports_without_rasa():
    check = ("import bot.stores.eventlog, bot.identity_bindings, sys; "
             "assert not [m for m in sys.modules if m == 'rasa' or m.startswith('rasa.')]")
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
