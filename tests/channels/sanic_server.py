"""A real Sanic server on loopback serving one real input channel, for attack tests.

The channel's messages are handed to a recording handler in place of Rasa's agent: what the
channel would give the dialogue (sender id, text) is visible without a model.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, List, Optional, Tuple

from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from tests.conftest import free_port


@asynccontextmanager
async def serve_channel(channel: Any, reply: Optional[Callable[[UserMessage], Any]] = None
                        ) -> AsyncIterator[Tuple[int, List[UserMessage]]]:
    messages: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        messages.append(message)
        if message.output_channel is not None:
            text = reply(message) if reply else f"收到：{message.text[:20]}"
            await message.output_channel.send_text_message(message.sender_id, text)

    app = Sanic(f"attack_{uuid.uuid4().hex[:8]}")
    app.config.MOTD = False
    # Rasa mounts the input channels under /webhooks/<name>/ (rasa.core.channels.channel.register)
    blueprint = channel.blueprint(on_new_message)
    if channel.name() == "socketio":
        app.blueprint(blueprint)
    else:
        app.blueprint(blueprint, url_prefix=f"/webhooks/{channel.name()}")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    await server.before_start()
    await server.after_start()
    task = asyncio.ensure_future(server.serve_forever())
    try:
        yield port, messages
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        task.cancel()
