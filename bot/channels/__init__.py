"""Input channels. Rasa imports this package at start-up (credentials.yml), so the Rasa server's
logs are masked from then on."""

from bot.privacy import install_log_masking

install_log_masking()
