"""Sanic 21.12 serves only one app per process unless its TouchUp runs once.

TouchUp rewrites methods of the Sanic and Http classes from their source when an app starts
(dropping dispatches of signals nobody listens to). For a second app in the same process it
rewrites the already rewritten methods, whose source it cannot find, and fails with
`KeyError: '_run_request_middleware'`. It cannot be skipped either: the unrewritten methods
dispatch signals that no app registered (`NotFound: http.lifecycle.complete`). Tests start many
apps, none with signal handlers of its own, so the first app's rewrite serves them all.
"""

from __future__ import annotations

from typing import Any, List

import sanic.app


def touch_up_once() -> None:
    run = sanic.app.TouchUp.run
    if getattr(run, "once", False):
        return
    done: List[bool] = []

    def once(app: Any) -> None:
        if not done:
            done.append(True)
            run(app)

    once.once = True  # type: ignore[attr-defined]
    sanic.app.TouchUp.run = once
