"""The policy configuration: one TOML file of thresholds and steps, every key known, every value checked.

The defaults live in `policy/default.toml` (documented there); a file passed to score.py overrides any key.
What each key accepts is declared beside its field here (policy/checks.py words the messages), so adding
a key is one field and one line of default.toml. The policy is separate from the model (it changes
without retraining), so each scoring run records its hash.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from policy.checks import AtLeast, Flag, Names, Number, OneOf, Rows, Text, Whole, accepts, problems, rows_of

DEFAULT_FILE = Path(__file__).with_name("default.toml")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and what to do."""


def key(*checks):
    """A policy key and what it accepts."""
    return field(metadata=accepts(*checks))


@dataclass(frozen=True)
class ScorePolicy:
    max_move: float = key(Number(0))
    adverse_drop: float = key(Number(0))
    cycle_months: int = key(Whole(1))


@dataclass(frozen=True)
class Band:
    min_score: float = key(Number())
    step: float = key(Number(-1, 10))


@dataclass(frozen=True)
class LimitPolicy:
    bands: tuple[Band, ...] = key(Rows(Band, "min_score", lowest=0, descending=True))
    max_increase: float = key(Number(0, 10))
    max_decrease: float = key(Number(0, 1))
    floor: float = key(Number(0))
    cap: float = key(Number(0), AtLeast("floor"))
    round_to: float = key(Number(0.01))
    increase_min_utilisation: float = key(Number(0, 10))
    no_increase_days_after_late: int = key(Number(0))
    freeze_dpd: int = key(Number(1))
    lgd: float = key(Number(0, 1))
    ccf: float = key(Number(0.01, 1))
    el_budget: float = key(Number(0))


@dataclass(frozen=True)
class EarlyWarningPolicy:
    threshold: float = key(Number(0, 1))
    action: str = key(Text(named=True))
    require_model: bool = key(Flag())


@dataclass(frozen=True)
class Bucket:
    min_dpd: int = key(Number(1))
    cure_threshold: float = key(Number(0, 1))
    likely: str = key(OneOf("treatments"))
    unlikely: str = key(OneOf("treatments"))


@dataclass(frozen=True)
class CollectionPolicy:
    treatments: tuple[str, ...] = key(Names(required=("legal_review",)))
    escalation_from: str = key(OneOf("treatments"))
    buckets: tuple[Bucket, ...] = key(Rows(Bucket, "min_dpd", lowest=1))
    legal_review_dpd: int = key(Number(1))
    legal_review_balance: float = key(Number(0))
    control_share: float = key(Number(0, 0.5))
    control_salt: str = key(Text())
    baseline: str = key(OneOf("treatments"))
    require_self_cure: bool = key(Flag())

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


SECTIONS = {"score": ScorePolicy, "limit": LimitPolicy, "early_warning": EarlyWarningPolicy,
            "collection": CollectionPolicy}


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the keys of `path` (if given) overriding it; checked before use."""
    raw = _read(DEFAULT_FILE)
    source = str(DEFAULT_FILE)
    if path is not None:
        source = str(path)
        for section, values in _read(Path(path)).items():
            if section not in SECTIONS:
                raise PolicyError(f"{path}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
            if not isinstance(values, dict):
                raise PolicyError(f"{path}: [{section}] must be a table of keys")
            raw.setdefault(section, {}).update(values)  # an unknown key is refused when the section is built
    built = {name: _build(cls, raw.get(name, {}), f"[{name}]", source) for name, cls in SECTIONS.items()}
    policy = Policy(**built, source=source)
    found = [p for name in SECTIONS for p in problems(getattr(policy, name), f"[{name}]")]
    if found:
        raise PolicyError(f"{source}: " + "; ".join(found))
    return policy


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from None


def _build(cls: type, raw: dict, where: str, source: str):
    """A section (or one row of its list) from its TOML table: every key known, none missing, lists as tuples."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise PolicyError(f"{source}: {where} has unknown key(s) {', '.join(unknown)}; known keys: "
                          f"{', '.join(sorted(known))}")
    missing = [k for k in known if k not in raw]
    if missing:
        raise PolicyError(f"{source}: {where} misses the key(s) {', '.join(missing)}; see policy/default.toml")
    values = {}
    for f in fields(cls):
        value, rows = raw[f.name], rows_of(f)
        if rows is not None:
            if not (isinstance(value, list) and all(isinstance(r, dict) for r in value)):
                raise PolicyError(f"{source}: {where} {f.name} must be a list of tables "
                                  f"{{ {', '.join(g.name + ' = ...' for g in fields(rows.kind))} }}")
            value = tuple(_build(rows.kind, r, f"{where} {f.name}, row {i + 1}:", source) for i, r in enumerate(value))
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)
