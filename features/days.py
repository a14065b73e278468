"""Day numbers from datetime64 ticks and back, compiled.

Why: numpy's datetime casts and int64 division and modulo cost 20-25 ns a value; on 20 M bills a table's
dates took seconds to read and to turn into day numbers. One compiled pass each runs at memory speed.
Day numbers are int64 days since 1970-01-01.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

NAT = np.iinfo(np.int64).min  # NaT's int64 view

PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000, "us": 86_400_000_000,
           "ns": 86_400_000_000_000}


def ticks_per_day(dtype: np.dtype) -> int:
    """Ticks in a day for a datetime64 dtype of one of the units above with step 1; 0 otherwise."""
    unit, step = np.datetime_data(dtype)
    return PER_DAY.get(unit, 0) if step == 1 else 0


@njit(parallel=True, cache=True)
def ticks_to_days(ticks, per_day, none):
    """Floor of ticks / per_day (the day a tick falls on); NaT becomes `none`."""
    out = np.empty(len(ticks), dtype=np.int64)
    if per_day == 86_400:  # seconds, as the contract stores dates: a constant divisor compiles to a multiply
        for i in prange(len(ticks)):
            v = ticks[i]
            out[i] = none if v == NAT else v // 86_400
        return out
    for i in range(len(ticks)):
        v = ticks[i]
        out[i] = none if v == NAT else v // per_day
    return out


@njit(cache=True, nogil=True)  # nogil: Parquet parts are read in threads
def days_to_ticks(days, per_day, out):
    """Day numbers (NaT kept) as ticks of per_day to the day, into `out`: date32 to datetime64[s] without
    numpy's cast."""
    for i in range(len(days)):
        v = days[i]
        out[i] = NAT if v == NAT else v * per_day


@njit(cache=True)
def off_midnight(ticks, per_day):
    """Rows holding a time of day (NaT is none)."""
    out = np.zeros(len(ticks), dtype=np.bool_)
    for i in range(len(ticks)):
        v = ticks[i]
        out[i] = v != NAT and v % per_day != 0
    return out


@njit(cache=True)
def any_off_midnight(ticks, per_day):
    if per_day == 86_400:  # seconds, as the contract stores dates: a constant divisor compiles to a multiply
        for i in range(len(ticks)):
            v = ticks[i]
            if v != NAT and v % 86_400 != 0:
                return True
        return False
    for i in range(len(ticks)):
        v = ticks[i]
        if v != NAT and v % per_day != 0:
            return True
    return False



@njit(parallel=True, cache=True)
def calendar_months(days):
    """Calendar months since 1970-01 of day numbers (NAT stays NAT), by the proleptic Gregorian calendar's
    arithmetic (Hinnant's civil_from_days): numpy's calendar casts cost tens of ns a value."""
    out = np.empty_like(days)
    for i in prange(len(days)):
        if days[i] == NAT:
            out[i] = NAT
            continue
        z = days[i] + 719_468
        era = (z if z >= 0 else z - 146_096) // 146_097
        doe = z - era * 146_097
        yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        month = mp + 3 if mp < 10 else mp - 9
        year = yoe + era * 400 + (1 if month <= 2 else 0)
        out[i] = (year - 1970) * 12 + month - 1
    return out


@njit(parallel=True, cache=True)
def month_end_days(months):
    """The day number of the last day of calendar months since 1970-01 (NAT stays NAT): the first day of the
    next month (Hinnant's days_from_civil) less one."""
    out = np.empty_like(months)
    for i in prange(len(months)):
        if months[i] == NAT:
            out[i] = NAT
            continue
        following = months[i] + 1
        year = 1970 + following // 12
        month = following % 12 + 1
        year -= 1 if month <= 2 else 0
        era = (year if year >= 0 else year - 399) // 400
        yoe = year - era * 400
        doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5
        out[i] = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468 - 1
    return out
