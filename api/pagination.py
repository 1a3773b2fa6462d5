"""Lago pagination: ``?page=N&per_page=M`` in, ``meta`` out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def meta(self, total_count: int) -> dict[str, Any]:
        total_pages = max(math.ceil(total_count / self.per_page), 1) if total_count else 0
        return {
            "current_page": self.page,
            "next_page": self.page + 1 if self.page < total_pages else None,
            "prev_page": self.page - 1 if self.page > 1 else None,
            "total_pages": total_pages,
            "total_count": total_count,
        }

    def of_list(self, key: str, items: list[Any]) -> dict[str, Any]:
        """This page of a list held in full, under ``key``, with its ``meta``."""
        return {
            key: items[self.offset : self.offset + self.per_page],
            "meta": self.meta(len(items)),
        }


def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1)] = DEFAULT_PER_PAGE,
) -> PageRequest:
    # A larger page is served as the largest allowed one rather than refused.
    return PageRequest(page=page, per_page=min(per_page, MAX_PER_PAGE))


Page = Annotated[PageRequest, Depends(page_request)]
