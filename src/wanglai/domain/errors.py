"""The errors a use case raises; each has a stable snake_case code the protocol exposes."""

from __future__ import annotations


class WanglaiError(Exception):
    """Base of every expected error. ``code`` is stable; ``message`` tells the caller what to do."""

    kind = "invalid"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[WanglaiError], tuple[str, str]]:
        """Errors cross process boundaries (the write process) with their code intact."""
        return (type(self), (self.code, self.message))


class Invalid(WanglaiError):
    """The request is malformed or breaks a rule (HTTP 400)."""

    kind = "invalid"


class Unauthorized(WanglaiError):
    """No valid credentials (HTTP 401)."""

    kind = "unauthorized"


class Forbidden(WanglaiError):
    """Credentials are fine but this action is not allowed (HTTP 403)."""

    kind = "forbidden"


class NotFound(WanglaiError):
    """The object does not exist, or the caller may not know it exists (HTTP 404)."""

    kind = "not_found"


class Conflict(WanglaiError):
    """The request conflicts with the current state (HTTP 409)."""

    kind = "conflict"


class TooLarge(WanglaiError):
    """The payload is bigger than allowed (HTTP 413)."""

    kind = "too_large"


class RateLimited(WanglaiError):
    """Too many attempts; ``retry_after`` seconds until the next may succeed (HTTP 429)."""

    kind = "rate_limited"

    def __init__(self, code: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[WanglaiError], tuple[str, str, float]]:  # type: ignore[override]
        return (type(self), (self.code, self.message, self.retry_after))


class Gone(WanglaiError):
    """The object existed but has expired (HTTP 410)."""

    kind = "gone"


class Unavailable(WanglaiError):
    """Something the request depends on (a bank, the operator) did not answer (HTTP 503)."""

    kind = "unavailable"
