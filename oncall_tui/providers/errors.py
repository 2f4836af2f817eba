"""The error every provider call raises, apart from the HTTP stack so that importing it is free."""

from __future__ import annotations


class ProviderError(Exception):
    """A failed call to an external system, worded for the operator.

    `str()` is "<source>: <message>", e.g. "alertmanager prod-a: connection refused". Neither
    part ever contains credentials: messages are built from our own words and the server's error
    text, and any credential sent with the request is scrubbed from the latter.

    `code` is the vendor's own error code when the answer carried one in PagerDuty's shape
    (`{"error": {"code": 1002, ...}}`), so callers can tell "already acknowledged" from a
    real failure without matching words.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        code: int | None = None,
    ) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
        self.status = status
        self.retryable = retryable
        self.code = code

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(source={self.source!r}, message={self.message!r}, "
            f"status={self.status!r}, retryable={self.retryable!r}, code={self.code!r})"
        )
