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
from functools import cache

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


class _Draws:
    """Uniform draws below BODIES from the operating system's CSPRNG, read in blocks: one
    `os.urandom` call per CCI (what `secrets` does) made a first run's 580,000 new CCIs take
    five seconds. Each draw is 7 bytes, taken only below the largest multiple of BODIES that
    fits in 56 bits (rejection, so no value is likelier than another). The block is dropped
    in a forked child, so two processes never hand out the same bytes."""

    BLOCK = 7 * 1024
    LIMIT = (1 << 56) // BODIES * BODIES

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.block = b""
        self.offset = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        self.block, self.offset = b"", 0

    def below_bodies(self) -> int:
        with self.lock:
            while True:
                if self.offset >= len(self.block):
                    self.block, self.offset = os.urandom(self.BLOCK), 0
                start = self.offset
                self.offset += 7
                value = int.from_bytes(self.block[start : self.offset], "big")
                if value < self.LIMIT:
                    return int(value % BODIES)


_draws = _Draws()


@cache
def _groups() -> tuple[list[str], list[int], list[int]]:
    """Every run of three symbols: its text, its weighted sum with weights 1, 2, 3, and its
    plain sum (at offset k the weights are k+1..k+3: weighted + k * plain). Made at the
    first new CCI (60 ms), not at import."""
    texts, weighted, plain = [], [], []
    for value in range(MODULUS**3):
        digits = (value // MODULUS**2, value // MODULUS % MODULUS, value % MODULUS)
        texts.append("".join(ALPHABET[d] for d in digits))
        weighted.append(digits[0] + 2 * digits[1] + 3 * digits[2])
        plain.append(sum(digits))
    return texts, weighted, plain


_INVERSE = pow(BODY_LENGTH + 1, -1, MODULUS)  # of the check character's weight


def new_cci() -> str:
    """Uniform over the body space, from one draw of the operating system's CSPRNG. Built
    three symbols at a time from tables: symbol by symbol it cost 7 us a CCI."""
    text, weighted, plain = _groups()
    value = _draws.below_bodies()
    value, c = divmod(value, MODULUS**3)
    value, b = divmod(value, MODULUS**3)
    letter, a = divmod(value, MODULUS**3)
    total = (
        letter
        + 10  # the letter's value: LETTERS start at ALPHABET[10]
        + weighted[a]
        + plain[a]
        + weighted[b]
        + 4 * plain[b]
        + weighted[c]
        + 7 * plain[c]
    )
    check = ALPHABET[(-total * _INVERSE) % MODULUS]
    return LETTERS[letter] + text[a] + text[b] + text[c] + check


def normalise_cci(text: str) -> str | None:
    """Upper-cased, spaces and hyphens removed; None unless well-formed with a valid check."""
    value = text.replace("-", "").replace(" ", "").upper()
    if len(value) != BODY_LENGTH + 1 or value[0] not in LETTERS:
        return None
    if any(symbol not in _VALUE for symbol in value):
        return None
    return value if check_character(value[:-1]) == value[-1] else None
