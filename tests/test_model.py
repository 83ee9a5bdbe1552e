from pathlib import Path

from bot.model import fingerprint, model_path
from bot.settings import Settings


def make_project(root: Path) -> None:
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "data" / "nlu" / "chitchat.yml").write_text("- 你好\n", encoding="utf-8")
    (root / "config.yml").write_text("language: zh\n")
    (root / "README.md").write_text("docs\n")


def test_fingerprint_is_stable_and_tracks_training_inputs(tmp_path):
    make_project(tmp_path)
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first

    (tmp_path / "README.md").write_text("other docs\n")
    assert fingerprint(tmp_path) == first  # not a model input

    (tmp_path / "data" / "nlu" / "chitchat.yml").write_text("- 您好\n", encoding="utf-8")
    changed = fingerprint(tmp_path)
    assert changed != first

    (tmp_path / "data" / "nlu" / "new.yml").write_text("", encoding="utf-8")
    assert fingerprint(tmp_path) != changed


def test_model_path_names_the_fingerprint(tmp_path):
    settings = Settings.from_env({"XIAOBAO_MODELS_DIR": str(tmp_path)})
    path = model_path(settings)
    assert path.parent == tmp_path
    assert path.name == f"xiaobao-{fingerprint()}.tar.gz"
