"""The library's single exception root, so callers (CLI, service) can map errors in one place."""

from __future__ import annotations


class CCIError(Exception):
    """Root of every error the linkage library raises on purpose."""


class UnusableInputError(CCIError):
    """An input file cannot be used at all (unreadable, wrong encoding, missing columns)."""


class KeyFileError(CCIError):
    """A linkage key file is missing, malformed or would be overwritten."""


class UnknownKeyError(CCIError):
    """Records were encoded under a key id the registry has not registered."""


class IngestStopped(CCIError):
    """An ingest was asked to stop before it committed: nothing of it was kept."""
