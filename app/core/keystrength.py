"""Whether a key is fit for production: long enough, not a development key, not low in entropy.

Keys are judged by their bytes, never by how they are written: the development encryption key is refused
under any key id and in any place of the list, and a secret that is a development key of another setting is
refused too. The rule (docs/security.md, "Keys and their rotation"):

- at least 32 bytes (`MIN_BYTES`): a text secret's UTF-8 bytes, a listed key's decoded bytes;
- not a development key, however written (raw, or the base64 of one), nor the key of another setting;
- not one byte or one short pattern repeated;
- an estimated entropy of at least `MIN_ENTROPY_BITS`. The estimate is the key's length times the Shannon
  entropy of its byte frequencies, or of its successive byte differences if that is lower (which catches
  runs such as `abcdef...` and `0123...`). It is biased low for short keys (32 bytes can score at most 160
  bits), so the bar is 120 bits: 32 random bytes score 135 or more, `openssl rand -hex 32` about 240,
  `openssl rand -base64 32` about 210, while `a` x 32 scores 0 and `0123456789abcdef` x 2 scores 17.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

MIN_BYTES = 32
MIN_ENTROPY_BITS = 120


def entropy_bits(material: bytes) -> float:
    """The estimate above: length x Shannon entropy of the byte frequencies or of the successive
    differences, whichever is lower."""
    differences = [(b - a) % 256 for a, b in itertools.pairwise(material)]
    return min(_shannon_bits(material), _shannon_bits(differences))


def _shannon_bits(values: Sequence[int]) -> float:
    n = len(values)
    if n == 0:
        return 0.0
    return -sum(count * math.log2(count / n) for count in Counter(values).values())


def _period(material: bytes) -> int | None:
    """The length of the shortest unit the key repeats (at least twice), if it is one repeated."""
    n = len(material)
    for unit in range(1, n // 2 + 1):
        if all(material[i] == material[i - unit] for i in range(unit, n)):
            return unit
    return None


def _spellings(material: bytes) -> set[bytes]:
    """The key's bytes, and for text that is base64, what it decodes to."""
    spelled = {material}
    with contextlib.suppress(binascii.Error, ValueError):
        spelled.add(base64.b64decode(material, validate=True))
    return spelled


def weakness(material: bytes) -> str | None:
    """Why these key bytes are too weak for production, or None."""
    if len(material) < MIN_BYTES:
        return f"is shorter than {MIN_BYTES} bytes"
    unit = _period(material)
    if unit == 1:
        return "is one byte repeated"
    if unit is not None:
        return f"is a pattern of {unit} bytes repeated"
    bits = entropy_bits(material)
    if bits < MIN_ENTROPY_BITS:
        return (
            f"has too little entropy (about {bits:.0f} bits by its byte frequencies; {MIN_ENTROPY_BITS} "
            "needed): generate it, e.g. with `openssl rand -hex 32`"
        )
    return None


def key_problems(
    keys: Mapping[str, Iterable[tuple[str | None, bytes]]], development_keys: Iterable[bytes]
) -> list[str]:
    """Every problem of the configured keys: setting name → (key id or None, key bytes) for each of its keys.
    `development_keys` are the bytes of every development default."""
    development = set(development_keys)
    problems: list[str] = []
    owner: dict[bytes, tuple[str, str]] = {}  # key bytes → (setting, name) of the first to use them
    for setting, entries in keys.items():
        for kid, material in entries:
            name = setting if kid is None else f"{setting}: key {kid!r}"
            spellings = _spellings(material)
            if spellings & development:
                problems.append(f"{name} is a development key; generate your own")
                continue
            reason = weakness(material)
            if reason is not None:
                problems.append(f"{name} {reason}")
                continue
            other = next((owner[s][1] for s in spellings if s in owner and owner[s][0] != setting), None)
            if other is not None:
                problems.append(f"{name} is the same key as {other}; give each purpose its own key")
            for spelling in spellings:
                owner.setdefault(spelling, (setting, name))
    return problems
