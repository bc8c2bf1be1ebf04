"""What the SDK raises: refusals as ``ApiError``, lost connections as ``Disconnected``."""

from __future__ import annotations


class ClientError(Exception):
    """Base of everything the SDK raises on purpose."""


class ApiError(ClientError):
    """The server refused: ``code`` is its stable snake_case code, ``message`` says what to do.

    ``status`` is the HTTP status; it is 0 for refusals that arrived over the WebSocket.
    """

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.code = code
        self.message = message
        self.status = status


class DeviceRevoked(ApiError):
    """This device was logged out (from another device or by an operator); log in again."""

    def __init__(self, message: str = "This device was logged out; log in again.") -> None:
        super().__init__("device_revoked", message, 401)


class Disconnected(ClientError):
    """The server could not be reached, or the connection dropped before it answered."""
