"""axe-core in the browser tests: the page under test is checked against WCAG 2.1 A/AA.

axe-core is vendored (tests/vendor/axe, from the npm registry) and evaluated through the
DevTools protocol, so the page's Content-Security-Policy, which forbids inline scripts, does not
have to be relaxed for the test. `axe_serious` returns the violations that matter for issue 16's
bar (impact serious or critical) in a form that reads well in an assertion message.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe" / "axe.min.js"
BLOCKING = ("serious", "critical")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


async def axe_violations(page: Any, include: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every axe violation on the page (or inside the `include` CSS selector)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    result = await page.evaluate(
        """async ([include, tags]) => {
             const context = include ? { include: [include] } : document;
             const r = await axe.run(context, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
             return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map(n => ({ target: n.target.join(" "), summary: n.failureSummary })) }));
           }""",
        [include, TAGS],
    )
    return result


async def axe_serious(page: Any, include: Optional[str] = None) -> List[Dict[str, Any]]:
    """The violations of impact serious or critical; [] when the page passes."""
    return [v for v in await axe_violations(page, include) if v["impact"] in BLOCKING]
