"""CCIs: random, with a check character, never mistakable for an NHS number.

Format: 11 characters from a 31-symbol alphabet (digits and upper-case letters without
I, L, O, U, Z), the first always a letter (an NHS number is 10 digits), the last a check
character. The check is a weighted sum modulo 31 (a prime) with distinct non-zero weights, so
every single-character substitution and every transposition of two adjacent different
characters is detected. 10 random symbols give about 49.5 bits: not guessable, and collisions
are checked against the registry before use.
"""

from __future__ import annotations

import secrets

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


def new_cci() -> str:
    """Uniform over the body space, from one `secrets` draw (a draw per symbol made the
    assignment of 100,000 new CCIs take five seconds)."""
    value = secrets.randbelow(len(LETTERS) * MODULUS ** (BODY_LENGTH - 1))
    symbols = []
    for _ in range(BODY_LENGTH - 1):
        value, digit = divmod(value, MODULUS)
        symbols.append(ALPHABET[digit])
    body = LETTERS[value] + "".join(reversed(symbols))
    return body + check_character(body)


def normalise_cci(text: str) -> str | None:
    """Upper-cased, spaces and hyphens removed; None unless well-formed with a valid check."""
    value = text.replace("-", "").replace(" ", "").upper()
    if len(value) != BODY_LENGTH + 1 or value[0] not in LETTERS:
        return None
    if any(symbol not in _VALUE for symbol in value):
        return None
    return value if check_character(value[:-1]) == value[-1] else None
