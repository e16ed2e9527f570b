"""CSV that a spreadsheet opens as text, never as formulas (CSV injection): every CSV the service writes goes
through these writers.

OWASP's rule: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single
quote, which spreadsheets take as "this is text" (and hide). Only text is guarded: a number or date the
service writes itself is not a formula. The price: a value such as a phone number `+46 70 ...` reads
`'+46 70 ...` in a text editor. The JSON download is the exact, machine-readable copy (docs/security.md,
"Input, headers and output")."""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TextIO

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """`value`, with a single quote before it if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


class Writer:
    """csv.writer, with every cell neutralized."""

    def __init__(self, stream: TextIO, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralize(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]  # generic only in the stubs
    """csv.DictWriter, with every cell (the header's too) neutralized."""

    def __init__(self, stream: TextIO, fieldnames: Collection[str], **options: Any) -> None:
        super().__init__(stream, fieldnames=fieldnames, **options)

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: neutralize(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)
