"""The agent console: an aiohttp app where support agents take over escalated conversations."""
