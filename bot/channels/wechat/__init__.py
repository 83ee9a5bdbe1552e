"""WeChat mini-program customer-service channel: crypto, message parsing, API client, channel."""
