"""Small exception families; loops catch these per item, log them and move on."""


class SovereignWatchError(Exception):
    """Base of every error the bot raises on purpose."""


class UsageError(SovereignWatchError):
    """Bad input from a user or operator: shown as a one-line message, exit code 2."""


class StoreError(SovereignWatchError):
    """The SQLite store cannot be opened or used (wrong file, read-only, newer schema)."""


class FeedError(SovereignWatchError):
    """A feed could not be fetched or parsed; `reason` is one line for `feeds list` and logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchTimeout(FeedError):
    """The server was too slow (connect or total deadline)."""


class BodyTooLarge(FeedError):
    """The body passed the size cap; the download was aborted."""


class BlockedAddress(FeedError):
    """The URL resolves to a loopback, private, link-local or metadata address."""


class HttpStatusError(FeedError):
    """The server answered with an error status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class TooManyRedirects(FeedError):
    """A redirect loop or chain longer than the limit."""


class NotAFeed(FeedError):
    """The body is not RSS, Atom or JSON Feed (an HTML page, an empty body, garbage)."""


class LLMUnavailable(SovereignWatchError):
    """The configured OpenAI-compatible endpoint failed; callers fall back to extractive."""


class DeliveryError(SovereignWatchError):
    """A send to a platform failed; the subclass says what the delivery worker should do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(DeliveryError):
    """The platform said 429: wait `retry_after` seconds; `scope` is 'chat' or 'global'."""

    def __init__(self, reason: str, retry_after: float, scope: str = "chat") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.scope = scope


class TransientDeliveryError(DeliveryError):
    """A 5xx, a timeout or a dropped connection: retry later with back-off."""


class DeliveryOutcomeUnknown(TransientDeliveryError):
    """The request may have reached the platform but no answer came back (timeout, reset).

    Where the platform dedupes by nonce a resend is harmless; elsewhere it may duplicate.
    """


class PermanentDeliveryError(DeliveryError):
    """The target cannot receive (blocked, kicked, deleted, missing permission): pause it.

    `kind` is one of: blocked, kicked, not_found, forbidden, bad_request.
    """

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class TargetMigrated(DeliveryError):
    """A Telegram group became a supergroup: move the target to `new_chat_id` and resend."""

    def __init__(self, reason: str, new_chat_id: str) -> None:
        super().__init__(reason)
        self.new_chat_id = new_chat_id
