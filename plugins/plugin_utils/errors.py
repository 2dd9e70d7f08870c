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
