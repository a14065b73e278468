"""The policy configuration: one TOML file of thresholds and steps, every key known, every value checked.

The defaults live in `policy/default.toml` (documented there); a file passed to score.py overrides any key.
The policy is separate from the model (it changes without retraining), so each scoring run records its hash.
"""
from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("default.toml")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and what to do."""


@dataclass(frozen=True)
class ScorePolicy:
    max_move: float
    adverse_drop: float
    cycle_months: int


@dataclass(frozen=True)
class Band:
    min_score: float
    step: float


@dataclass(frozen=True)
class LimitPolicy:
    bands: tuple[Band, ...]
    max_increase: float
    max_decrease: float
    floor: float
    cap: float
    round_to: float
    increase_min_utilisation: float
    no_increase_days_after_late: int
    freeze_dpd: int
    lgd: float
    ccf: float
    el_budget: float


@dataclass(frozen=True)
class EarlyWarningPolicy:
    threshold: float
    action: str


@dataclass(frozen=True)
class Bucket:
    min_dpd: int
    cure_threshold: float
    likely: str
    unlikely: str


@dataclass(frozen=True)
class CollectionPolicy:
    treatments: tuple[str, ...]
    escalation_from: str
    buckets: tuple[Bucket, ...]
    legal_review_dpd: int
    legal_review_balance: float
    control_share: float
    control_salt: str
    baseline: str

    def severity(self, treatment: str) -> int:
        """1 for the mildest treatment upwards; 0 for none."""
        return self.treatments.index(treatment) + 1 if treatment else 0


@dataclass(frozen=True)
class Policy:
    score: ScorePolicy
    limit: LimitPolicy
    early_warning: EarlyWarningPolicy
    collection: CollectionPolicy
    source: str = str(DEFAULT_FILE)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("source")
        return out

    @property
    def hash(self) -> str:
        """SHA-256 of the effective settings (not of the file's text: comments and order do not count)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


_SECTIONS = {"score": ScorePolicy, "limit": LimitPolicy, "early_warning": EarlyWarningPolicy,
             "collection": CollectionPolicy}


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the keys of `path` (if given) overriding it; checked before use."""
    raw = _read(DEFAULT_FILE)
    source = str(DEFAULT_FILE)
    if path is not None:
        override = _read(Path(path))
        source = str(path)
        for section, values in override.items():
            if section not in _SECTIONS:
                raise PolicyError(f"{path}: unknown section [{section}]; known: {', '.join(_SECTIONS)}")
            if not isinstance(values, dict):
                raise PolicyError(f"{path}: [{section}] must be a table of keys")
            unknown = sorted(set(values) - set(raw[section]))
            if unknown:
                raise PolicyError(f"{path}: [{section}] has unknown key(s) {', '.join(unknown)}; known keys: "
                                  f"{', '.join(sorted(raw[section]))}")
            raw[section].update(values)
    try:
        policy = Policy(
            score=ScorePolicy(**raw["score"]),
            limit=LimitPolicy(**{**raw["limit"], "bands": tuple(Band(**b) for b in raw["limit"]["bands"])}),
            early_warning=EarlyWarningPolicy(**raw["early_warning"]),
            collection=CollectionPolicy(**{**raw["collection"],
                                           "treatments": tuple(raw["collection"]["treatments"]),
                                           "buckets": tuple(Bucket(**b) for b in raw["collection"]["buckets"])}),
            source=source,
        )
    except TypeError as exc:  # a band or bucket with a missing or unknown key
        raise PolicyError(f"{source}: {exc}; see policy/default.toml for the keys") from None
    problems = check(policy)
    if problems:
        raise PolicyError(f"{source}: " + "; ".join(problems))
    return policy


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from None


def check(p: Policy) -> list[str]:
    """Every broken rule, in words (empty when the policy is usable)."""
    out: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            out.append(message)

    def number(section: str, key: str, value, lo: float = -math.inf, hi: float = math.inf) -> None:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
        need(ok, f"[{section}] {key} must be a number in [{lo}, {hi}], got {value!r}")

    s, lim, ew, col = p.score, p.limit, p.early_warning, p.collection
    number("score", "max_move", s.max_move, 0)
    number("score", "adverse_drop", s.adverse_drop, 0)
    need(isinstance(s.cycle_months, int) and s.cycle_months >= 1, "[score] cycle_months must be a whole number >= 1")
    need(len(lim.bands) > 0, "[limit] bands must list at least one band")
    for b in lim.bands:
        number("limit", "bands.min_score", b.min_score)
        number("limit", "bands.step", b.step, -1, 10)
    mins = [b.min_score for b in lim.bands]
    need(mins == sorted(mins, reverse=True) and len(set(mins)) == len(mins),
         f"[limit] bands must be listed highest min_score first, without repeats (got {mins})")
    need(bool(lim.bands) and lim.bands[-1].min_score <= 0,
         "[limit] the last band must have min_score = 0 so that every score falls in a band")
    number("limit", "max_increase", lim.max_increase, 0, 10)
    number("limit", "max_decrease", lim.max_decrease, 0, 1)
    number("limit", "floor", lim.floor, 0)
    number("limit", "cap", lim.cap, 0)
    need(lim.cap >= lim.floor, f"[limit] cap ({lim.cap}) must be at least floor ({lim.floor})")
    number("limit", "round_to", lim.round_to, 0.01)
    number("limit", "increase_min_utilisation", lim.increase_min_utilisation, 0, 10)
    number("limit", "no_increase_days_after_late", lim.no_increase_days_after_late, 0)
    number("limit", "freeze_dpd", lim.freeze_dpd, 1)
    number("limit", "lgd", lim.lgd, 0, 1)
    number("limit", "ccf", lim.ccf, 0.01, 1)
    number("limit", "el_budget", lim.el_budget, 0)
    number("early_warning", "threshold", ew.threshold, 0, 1)
    need(isinstance(ew.action, str) and ew.action != "", "[early_warning] action must be a non-empty name")
    need(len(col.treatments) == len(set(col.treatments)) and all(isinstance(t, str) and t for t in col.treatments),
         "[collection] treatments must be distinct non-empty names")
    named = set(col.treatments)
    for key, value in (("escalation_from", col.escalation_from), ("baseline", col.baseline)):
        need(value in named, f"[collection] {key} {value!r} is not one of the treatments {list(col.treatments)}")
    need("legal_review" in named, "[collection] treatments must include legal_review")
    need(len(col.buckets) > 0, "[collection] buckets must list at least one bucket")
    for b in col.buckets:
        number("collection", "buckets.min_dpd", b.min_dpd, 1)
        number("collection", "buckets.cure_threshold", b.cure_threshold, 0, 1)
        for key in ("likely", "unlikely"):
            value = getattr(b, key)
            need(value in named, f"[collection] bucket from {b.min_dpd} DPD: {key} {value!r} is not one of the "
                                 f"treatments {list(col.treatments)}")
    dpds = [b.min_dpd for b in col.buckets]
    need(dpds == sorted(dpds) and len(set(dpds)) == len(dpds),
         f"[collection] buckets must be listed lowest min_dpd first, without repeats (got {dpds})")
    need(bool(dpds) and dpds[0] == 1, "[collection] the first bucket must start at min_dpd = 1")
    number("collection", "legal_review_dpd", col.legal_review_dpd, 1)
    number("collection", "legal_review_balance", col.legal_review_balance, 0)
    number("collection", "control_share", col.control_share, 0, 0.5)
    need(isinstance(col.control_salt, str), "[collection] control_salt must be text")
    return out
