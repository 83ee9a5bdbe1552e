"""`make audit`: pip-audit against the pinned requirements.txt, written up as a dated report.

Runs in the separate .venv-audit (pip-audit pinned in requirements-audit.txt) and asks each
vulnerability service in turn. The report says plainly when a service could not be reached or
could not audit a package: "no known vulnerabilities" is only claimed for packages that were
really checked.

Exit status: 0 every package audited and none vulnerable; 1 vulnerabilities found;
2 no service could audit every package (unreachable, or packages skipped).

Usage: python scripts/audit.py [--service pypi] [--service osv] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVICES = ("pypi", "osv")


def pip_audit_command(service: str, requirements: str, output: str) -> List[str]:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    return [str(pip_audit), "-r", requirements, "--no-deps", "--disable-pip", "-s", service,
            "-f", "json", "-o", output, "--progress-spinner", "off"]


def run_service(service: str, requirements: str) -> Tuple[List[str], Dict[str, Any]]:
    """Runs pip-audit with one service; returns the lines of its section and a summary."""
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "audit.json")
        command = pip_audit_command(service, requirements, output)
        shown = " ".join([".venv-audit/bin/pip-audit", *command[1:-6], "-f", "json"])
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
        lines = [f"## service: {service}", f"command: {shown}", f"exit status: {done.returncode}"]
        if not os.path.exists(output):
            error = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            lines += ["result: NOT AUDITED - the service could not be used from this machine.",
                      f"error: {error}", ""]
            return lines, {"service": service, "audited": 0, "skipped": None, "vulnerable": 0}
        report = json.loads(Path(output).read_text())
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    lines.append(f"packages: {len(dependencies)} listed, {len(audited)} audited, {len(skipped)} skipped, "
                 f"{len(vulnerable)} with known vulnerabilities")
    if skipped and not audited:
        lines.append("result: NOT AUDITED - the service answered for none of the pinned packages, so its "
                     "'No known vulnerabilities found' means nothing here.")
    elif skipped:
        lines.append("result: PARTIAL - some packages were skipped (listed below).")
    elif vulnerable:
        lines.append("result: VULNERABLE packages found (listed below).")
    else:
        lines.append("result: every pinned package audited; no known vulnerabilities.")
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            aliases = ", ".join(vuln.get("aliases") or [])
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none"
            lines.append(f"  {dependency['name']} {dependency['version']}: {vuln['id']}"
                         f"{f' ({aliases})' if aliases else ''}; fixed in {fixes}")
    if skipped:
        reasons = Counter(_reason_kind(d["skip_reason"]) for d in skipped)
        lines.append("skip reasons: " + "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common()))
        lines.append("skipped: " + ", ".join(f"{d['name']}=={d['version']}" if d.get("version") else d["name"]
                                             for d in skipped))
    lines.append("")
    return lines, {"service": service, "audited": len(audited), "skipped": len(skipped),
                   "vulnerable": len(vulnerable)}


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0].strip()


def pip_audit_version() -> str:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    done = subprocess.run([str(pip_audit), "--version"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", action="append", choices=("pypi", "osv", "esms"),
                        help="vulnerability service, repeatable (default: pypi, then osv)")
    parser.add_argument("--requirements", default="requirements.txt")
    parser.add_argument("--out", default="docs/security/pip-audit.txt")
    args = parser.parse_args(argv)
    services = args.service or list(DEFAULT_SERVICES)

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"# pip-audit report for {args.requirements} (generated by `make audit`, scripts/audit.py)",
        f"date: {now}",
        f"tool: {pip_audit_version()} (pinned in requirements-audit.txt, installed in .venv-audit)",
        f"services tried: {', '.join(services)}",
        "",
    ]
    sections: List[str] = []
    summaries = []
    for service in services:
        lines, summary = run_service(service, args.requirements)
        sections += lines
        summaries.append(summary)

    complete = [s for s in summaries if s["audited"] and s["skipped"] == 0]
    vulnerable = any(s["vulnerable"] for s in summaries)
    if vulnerable:
        verdict, status = "VULNERABILITIES FOUND: see the services above and docs/SECURITY.md.", 1
    elif complete:
        verdict, status = (f"CLEAN: every pinned package audited by {', '.join(s['service'] for s in complete)}; "
                           "no known vulnerabilities."), 0
    else:
        verdict, status = ("INCOMPLETE: no service audited every pinned package, so this run proves nothing "
                           "about known vulnerabilities. docs/SECURITY.md lists the advisories reviewed by hand."), 2
    text = "\n".join(header + [f"overall: {verdict}", ""] + sections)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"report written to {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
