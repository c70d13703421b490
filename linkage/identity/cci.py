"""CCIs: random, with a check character, never mistakable for an NHS number.

Format: 11 characters from a 31-symbol alphabet (digits and upper-case letters without
I, L, O, U, Z), the first always a letter (an NHS number is 10 digits), the last a check
character. The check is a weighted sum modulo 31 (a prime) with distinct non-zero weights, so
every single-character substitution and every transposition of two adjacent different
characters is detected. 10 random symbols give about 49.5 bits: not guessable, and collisions
are checked against the registry before use.
"""

from __future__ import annotations

import os
import threading

import numpy as np

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"
MODULUS = len(ALPHABET)  # 31, prime
LETTERS = ALPHABET[10:]
BODY_LENGTH = 10
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
assert MODULUS == 31


def _weighted_sum(body: str) -> int:
    return sum((i + 1) * _VALUE[symbol] for i, symbol in enumerate(body)) % MODULUS


def check_character(body: str) -> str:
    """The symbol c such that the weighted sum over body + c is 0 modulo 31."""
    weight = len(body) + 1
    inverse = pow(weight, -1, MODULUS)
    return ALPHABET[(-_weighted_sum(body) * inverse) % MODULUS]


BODIES = len(LETTERS) * MODULUS ** (BODY_LENGTH - 1)  # about 2^49.0


class _Pool:
    """CCIs made a block at a time from the operating system's CSPRNG, in NumPy arrays: one
    `os.urandom` call per CCI made a first run's 580,000 new CCIs take five seconds, and
    building each from symbol tables still took 1.2 s. Each draw is 7 bytes, taken only below
    the largest multiple of BODIES that fits in 56 bits (rejection, so no value is likelier
    than another). The block is dropped in a forked child, so two processes never hand out
    the same CCIs."""

    BLOCK = 4096
    LIMIT = (1 << 56) // BODIES * BODIES

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ready: list[str] = []
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self.lock = threading.Lock()
        self.ready = []

    def take(self) -> str:
        with self.lock:
            if not self.ready:
                self.ready = self.made(self.BLOCK)
            return self.ready.pop()

    @classmethod
    def made(cls, count: int) -> list[str]:
        """`count` new CCIs: a letter, nine symbols, the check character."""
        values = cls.draws(count)
        symbols = np.empty((count, BODY_LENGTH + 1), np.int64)
        for position in range(BODY_LENGTH - 1, 0, -1):
            values, symbols[:, position] = np.divmod(values, MODULUS)
        symbols[:, 0] = values + 10  # the letter's value: LETTERS start at ALPHABET[10]
        weighted = symbols[:, :BODY_LENGTH] @ np.arange(1, BODY_LENGTH + 1)
        symbols[:, BODY_LENGTH] = (-weighted * _INVERSE) % MODULUS
        text = _ASCII[symbols].tobytes().decode("ascii")
        width = BODY_LENGTH + 1
        return [text[start : start + width] for start in range(0, len(text), width)]

    @classmethod
    def draws(cls, count: int) -> np.ndarray:
        """`count` uniform draws below BODIES."""
        kept: list[np.ndarray] = []
        while (have := sum(len(k) for k in kept)) < count:
            raw = np.frombuffer(os.urandom(7 * (count - have + 64)), np.uint8).reshape(-1, 7)
            values = np.zeros(len(raw), np.int64)
            for column in range(7):  # big-endian, 56 bits: fits a signed 64-bit integer
                values = (values << 8) | raw[:, column]
            kept.append(values[values < cls.LIMIT] % BODIES)
        return np.concatenate(kept)[:count]


_INVERSE = pow(BODY_LENGTH + 1, -1, MODULUS)  # of the check character's weight
_ASCII = np.frombuffer(ALPHABET.encode("ascii"), np.uint8)
_pool = _Pool()


def new_cci() -> str:
    """Uniform over the body space, from the operating system's CSPRNG."""
    return _pool.take()


def normalise_cci(text: str) -> str | None:
    """Upper-cased, spaces and hyphens removed; None unless well-formed with a valid check."""
    value = text.replace("-", "").replace(" ", "").upper()
    if len(value) != BODY_LENGTH + 1 or value[0] not in LETTERS:
        return None
    if any(symbol not in _VALUE for symbol in value):
        return None
    return value if check_character(value[:-1]) == value[-1] else None
