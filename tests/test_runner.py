from bot.runner import api_token
from bot.settings import Settings


def test_api_token_is_generated_once_and_kept_private(tmp_path):
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path)})
    token = api_token(settings)
    assert len(token) >= 32
    assert api_token(settings) == token
    assert (tmp_path / "rasa_api_token").stat().st_mode & 0o077 == 0


def test_api_token_from_the_environment_wins(tmp_path):
    settings = Settings.from_env({"XIAOBAO_VAR_DIR": str(tmp_path), "RASA_API_TOKEN": "s3cret"})
    assert api_token(settings) == "s3cret"
    assert not (tmp_path / "rasa_api_token").exists()


def test_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.rasa_port, settings.action_port, settings.web_port) == (5005, 5055, 8000)
    assert settings.redis_url is None
    assert settings.action_endpoint_url == "http://127.0.0.1:5055/webhook"
    assert "http://localhost:8000" in settings.cors_origins.split()
