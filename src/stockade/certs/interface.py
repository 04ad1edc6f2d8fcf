"""The certificates package's error: a certificate store that cannot be read (its path named)."""

from __future__ import annotations

from stockade.errors import StockadeError

__all__ = ["CertError", "NoCertificate"]


class CertError(StockadeError):
    """A file that holds no certificate Stockade can read, or a keystore it cannot open; the message
    names the file and what was wrong."""


class NoCertificate(CertError):
    """A file that is well formed but holds no certificate (a PEM of keys only, an empty file):
    counted by a scan, not reported as a problem."""
