"""rasa_sdk action server package for xiaobao (run with `python -m rasa_sdk --actions actions`)."""
