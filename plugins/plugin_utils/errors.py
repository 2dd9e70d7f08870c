"""Errors the governance core raises. Each message names what was wrong, where, and the fix."""


class ProdgateError(Exception):
    """Base class: a refusal or invalid input, reported to people as one clear message."""


class PolicyError(ProdgateError):
    """The policy file is malformed, unsigned, expired or altered."""


class ApprovalError(ProdgateError):
    """An approval or evidence bundle is missing, invalid or insufficient."""


class CalendarError(ProdgateError):
    """Calendar data is missing (for example a year without data) or invalid."""


class RegisterError(ProdgateError):
    """The change register is unwritable, corrupted or fails verification."""


class ReleaseError(ProdgateError):
    """A release bundle is malformed, incomplete (Art. 9, Art. 28) or altered (Art. 8)."""


class InputError(ProdgateError, ValueError):
    """Input refused before it is used: a timestamp without offset, an overflowing duration, a path
    with a NUL byte, a FIFO or device where a file belongs, a file too large or nested too deeply.
    Also a ValueError, so that code validating with ``except ValueError`` keeps refusing it."""


class TrustError(ProdgateError):
    """The controller's trust settings are missing, unsafe, or a run tried to override them."""
