"""rasa_sdk action server package for xiaobao (run with `python -m rasa_sdk --actions actions`).

rasa_sdk imports this package at start-up, so the action server's logs are masked from then on.
"""

from bot.privacy import install_log_masking

install_log_masking()
