"""Model lifecycle: a fingerprint of everything that shapes the model, and train-if-stale.

Usage: python -m bot.model train | path | test-stories
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List

from bot.paths import ROOT
from bot.settings import Settings

# Everything that changes what `rasa train` produces.
FINGERPRINT_INPUTS = (
    "data",
    "domain",
    "config.yml",
    "knowledge/entities.yml",
    "knowledge/jieba_userdict.txt",
    "bot/nlu",
    "requirements.txt",
)
MODEL_PREFIX = "xiaobao-"


def _files(root: Path, inputs: Iterable[str]) -> List[Path]:
    found: List[Path] = []
    for name in inputs:
        path = root / name
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            found.append(path)
    return sorted(found)


def fingerprint(root: Path = ROOT, inputs: Iterable[str] = FINGERPRINT_INPUTS) -> str:
    """A short hash over the relative paths and contents of the model's inputs."""
    digest = hashlib.sha256()
    for path in _files(root, inputs):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(settings: Settings, root: Path = ROOT) -> Path:
    return settings.models_dir / f"{MODEL_PREFIX}{fingerprint(root)}.tar.gz"


def rasa_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "rasa", *args]


def ensure_trained(settings: Settings) -> Path:
    """Returns the model for the current inputs, training it first when missing."""
    target = model_path(settings)
    if target.exists():
        print(f"model up to date: {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    # One training at a time: a second process (another test session, `make run`) waits for the
    # first and then uses its model instead of training the same one again on the same cores.
    with open(settings.models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = model_path(settings)
        if target.exists():
            return target
        return _train(settings, target)


def _train(settings: Settings, target: Path) -> Path:
    print(f"training model {target.name} (data, config or domain changed) ...", flush=True)
    subprocess.run(
        rasa_command(
            "train",
            "--config", "config.yml",
            "--domain", "domain",
            "--data", "data",
            "--out", str(settings.models_dir),
            "--fixed-model-name", target.name[: -len(".tar.gz")],
        ),
        cwd=ROOT,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    for stale in settings.models_dir.glob(f"{MODEL_PREFIX}*.tar.gz"):
        if stale != target:
            stale.unlink()
    return target


def test_stories(settings: Settings) -> int:
    model = ensure_trained(settings)
    return subprocess.run(
        rasa_command(
            "test", "core",
            "--model", str(model),
            "--stories", "tests/test_stories.yml",
            "--fail-on-prediction-errors",
            "--out", "results",
        ),
        cwd=ROOT,
    ).returncode


def main(argv: List[str]) -> int:
    settings = Settings.from_env()
    command = argv[0] if argv else "train"
    if command == "train":
        ensure_trained(settings)
        return 0
    if command == "path":
        print(model_path(settings))
        return 0
    if command == "test-stories":
        return test_stories(settings)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
