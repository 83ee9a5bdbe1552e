"""Input channels. Rasa imports this package at start-up (credentials.yml), so from then on the
Rasa server's logs are masked and its patched internals (bot.rasa_patches) are in place."""

from bot import rasa_patches
from bot.privacy import install_log_masking

install_log_masking()
rasa_patches.install()
