"""Who is on the book: the customers there when the world begins, those who arrive every month after, and
the lanes (products) each holds.

A customer is keyed by (cohort, slot): cohort 0 is the book the world starts with, cohort a the customers
arriving in world month a. The number arriving a month is fixed by the request, never by who left, so two
replays of the world share every customer's draws even when attrition differs. The starting book is drawn as
the steady book would be (its risk mix weighted by how long each type stays, `WorldParams.book_risk_given_band`)
and the arrivals replace, on average, what leaves, so the book's size and mix stay level.

Customers are ordered by their place in their cohort, so every chunk of consecutive customers holds its share
of every cohort, and customer ids follow that order.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from simulation.params import WorldParams

COHORT_SHIFT = 32  # a customer's draw key: cohort << COHORT_SHIFT | slot


@dataclass(frozen=True)
class Book:
    cohort: np.ndarray  # per customer, in customer-id order: 0 the starting book, a >= 1 arrived in world month a
    slot: np.ndarray
    initial: int  # customers on the book in the world's first month
    arrivals: int  # customers arriving each later month

    @property
    def n_customers(self) -> int:
        return len(self.cohort)

    @property
    def customer_id(self) -> np.ndarray:
        return np.arange(1, self.n_customers + 1, dtype=np.int64)

    @property
    def unit(self) -> np.ndarray:
        """Each customer's key for its random draws (simulation.rng)."""
        return (self.cohort.astype(np.int64) << COHORT_SHIFT) | self.slot.astype(np.int64)


def book(n_accounts: int, params: WorldParams, months: int) -> Book:
    """The customers of a world of about `n_accounts` open accounts over `months` world months."""
    initial = max(1, round(n_accounts / params.accounts_per_customer))
    arrivals = round(initial * params.arrival_rate)
    cohort = np.concatenate([np.zeros(initial, np.int64), np.repeat(np.arange(1, months, dtype=np.int64), arrivals)])
    slot = np.concatenate([np.arange(initial, dtype=np.int64), np.tile(np.arange(arrivals, dtype=np.int64),
                                                                        max(months - 1, 0))])
    place = (slot + 0.5) / np.where(cohort == 0, initial, max(arrivals, 1))
    order = np.lexsort((cohort, place))
    return Book(cohort[order], slot[order], initial, arrivals)


def chunk_bounds(bk: Book, n_accounts: int, chunk_accounts: int) -> list[tuple[int, int]]:
    """Runs of consecutive customers, about `chunk_accounts` open accounts' worth each."""
    parts = max(1, -(-n_accounts // chunk_accounts))
    cuts = np.linspace(0, bk.n_customers, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in pairwise(cuts) if b > a]
