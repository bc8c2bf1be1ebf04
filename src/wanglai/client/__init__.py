"""The Python SDK: ``Client`` logs in, sends, pages history and iterates live events.

Importing it loads aiohttp, msgspec and the view structs, never the server's store or services.
"""

from __future__ import annotations

from wanglai.client.backoff import Backoff
from wanglai.client.client import Client
from wanglai.client.errors import ApiError, ClientError, DeviceRevoked, Disconnected
from wanglai.client.frames import Hello, Login, SyncPage
from wanglai.services.views import (
    ConversationView,
    DeviceView,
    EventView,
    MessageView,
    MeView,
    UserView,
)

__all__ = [
    "ApiError",
    "Backoff",
    "Client",
    "ClientError",
    "ConversationView",
    "DeviceRevoked",
    "DeviceView",
    "Disconnected",
    "EventView",
    "Hello",
    "Login",
    "MeView",
    "MessageView",
    "SyncPage",
    "UserView",
]
