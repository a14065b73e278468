"""A latent-state filter over each customer's monthly repayment outcomes: a mixture of hidden Markov chains.

Why: a tree model reads windowed counts, and cannot carry what a long record says about a customer's lasting
habits beyond the history lengths it was trained on. The filter reads the whole record the same way at 7
months as at 30: each customer has a lasting class (fixed, unobserved) and a monthly state (a Markov chain
per class); each month, every account of theirs shows an outcome (features.outcomes) drawn from the
(class, state). Fitted by EM on what is known at the training end, it gives per customer and T the posterior
of class and state, and from them the chance of a missed payment in the months ahead.

Censored outcomes (a bill unpaid at T) and coarse ones enter as intervals of categories, so nothing not yet
known at T is assumed. Parameters are plain arrays (JSON in the model bundle, no pickle).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from features.catalog import Catalog, Feature, NotAReason, Reason
from features.outcomes import CATEGORIES, MISSED, BillOutcomes, month_number

N_CAT = len(CATEGORIES)
FLOOR = 1e-300


@dataclass(frozen=True)
class Customers:
    """The accounts of each customer, grouped: `order` lists account rows customer by customer, `start` the
    offsets of each customer's run in it (length n_customers + 1), `band` each customer's prior row."""

    order: np.ndarray
    start: np.ndarray
    band: np.ndarray
    of_account: np.ndarray  # customer index of each account row

    @classmethod
    def group(cls, customer_id: np.ndarray, band_code: np.ndarray) -> Customers:
        ids, of_account = np.unique(np.asarray(customer_id), return_inverse=True)
        order = np.argsort(of_account, kind="stable")
        start = np.searchsorted(of_account[order], np.arange(len(ids) + 1)).astype(np.int64)
        band = np.zeros(len(ids), np.int64)
        band[of_account] = band_code  # accounts of one customer share their band; the last one wins otherwise
        return cls(order.astype(np.int64), start, band, of_account.astype(np.int64))

    def sample(self, n: int, seed: int) -> Customers:
        """A seeded sample of n customers with all their accounts (all of them when there are no more)."""
        total = len(self.start) - 1
        if total <= n:
            return self
        pick = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
        sizes = np.diff(self.start)[pick]
        ends = np.cumsum(sizes)
        within = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - sizes, sizes)  # 0, 1, .. per customer
        rows = np.repeat(self.start[pick], sizes) + within
        # of_account stays the whole set's: a sample is for fitting, which never maps accounts back
        return Customers(self.order[rows], np.r_[0, ends].astype(np.int64), self.band[pick], self.of_account)


@njit(cache=True)
def _cumulative(emit):
    """Running sums of each hidden value's category probabilities: an interval's chance is one difference."""
    K, S, C = emit.shape
    cum = np.zeros((K * S, C + 1))
    for z in range(K * S):
        for c in range(C):
            cum[z, c + 1] = cum[z, c] + emit[z // S, z % S, c]
    return cum


@njit(cache=True)
def _emission(lo, hi, order, a0, a1, t, cum, out):
    """P(this month's outcomes | each hidden value), over the customer's accounts; False when none observed."""
    for z in range(out.shape[0]):
        out[z] = 1.0
    seen = False
    for r in range(a0, a1):
        a = order[r]
        low = lo[a, t]
        if low < 0:
            continue
        high = hi[a, t]
        seen = True
        for z in range(out.shape[0]):
            out[z] *= cum[z, high + 1] - cum[z, low]
    return seen


@njit(cache=True)
def _predict(alpha, trans, n_states, out):
    """One month ahead: each class's chain steps on its own (the class never changes). Looped by class and
    state, not by hidden value: an integer division per value cost more than the products."""
    for k in range(trans.shape[0]):
        base = k * n_states
        for j in range(n_states):
            acc = 0.0
            for i in range(n_states):
                acc += alpha[base + i] * trans[k, i, j]
            out[base + j] = acc


@njit(parallel=True, cache=True)
def _estep(lo, hi, order, start, band, n_months, prior, trans, emit, n_states):
    """Forward-backward per customer; returns the expected counts (prior, transitions, emissions) and the
    log-likelihood. Each customer's chain starts at its first observed month and ends at its last."""
    n_cust = len(start) - 1
    Z = prior.shape[1]
    K = trans.shape[0]
    cum = _cumulative(emit)
    n_threads = 2
    e_prior = np.zeros((n_threads, prior.shape[0], Z))
    e_trans = np.zeros((n_threads, K, n_states, n_states))
    e_emit = np.zeros((n_threads, K, n_states, N_CAT))
    loglik = np.zeros(n_threads)
    chunk = (n_cust + n_threads - 1) // n_threads
    for th in prange(n_threads):
        alpha = np.zeros((n_months, Z))
        e = np.zeros((n_months, Z))
        seen = np.zeros(n_months, np.bool_)
        scale = np.ones(n_months)
        beta = np.zeros(Z)
        nxt = np.zeros(Z)
        pred = np.zeros(Z)
        for c in range(th * chunk, min(n_cust, (th + 1) * chunk)):
            first, last = -1, -1
            for t in range(n_months):
                seen[t] = _emission(lo, hi, order, start[c], start[c + 1], t, cum, e[t])
                if seen[t]:
                    last = t
                    if first < 0:
                        first = t
            if first < 0:
                continue
            for t in range(first, last + 1):
                if t == first:
                    for z in range(Z):
                        pred[z] = prior[band[c], z]
                else:
                    _predict(alpha[t - 1], trans, n_states, pred)
                total = 0.0
                for z in range(Z):
                    alpha[t, z] = pred[z] * e[t, z]
                    total += alpha[t, z]
                total = max(total, FLOOR)
                scale[t] = total
                loglik[th] += np.log(total)
                for z in range(Z):
                    alpha[t, z] /= total
            for z in range(Z):
                beta[z] = 1.0
            for t in range(last, first - 1, -1):
                g_total = 0.0
                for z in range(Z):
                    g_total += alpha[t, z] * beta[z]
                for z in range(Z):
                    g = alpha[t, z] * beta[z] / max(g_total, FLOOR)
                    if g <= 0.0:
                        continue
                    k, s = z // n_states, z % n_states
                    if t == first:
                        e_prior[th, band[c], z] += g
                    if seen[t]:  # split the month's posterior over the categories each interval allows
                        for r in range(start[c], start[c + 1]):
                            a = order[r]
                            low = lo[a, t]
                            if low < 0:
                                continue
                            high = hi[a, t]
                            mass = cum[z, high + 1] - cum[z, low]
                            if mass <= 0.0:
                                continue
                            for cat in range(low, high + 1):
                                e_emit[th, k, s, cat] += g * emit[k, s, cat] / mass
                if t > first:
                    for z in range(Z):
                        nxt[z] = e[t, z] * beta[z] / scale[t]
                    for z in range(Z):
                        k, i = z // n_states, z % n_states
                        acc = 0.0
                        for j in range(n_states):
                            w = alpha[t - 1, z] * trans[k, i, j] * nxt[k * n_states + j]
                            e_trans[th, k, i, j] += w
                            acc += trans[k, i, j] * nxt[k * n_states + j]
                        pred[z] = acc
                    for z in range(Z):
                        beta[z] = pred[z]
    return e_prior.sum(axis=0), e_trans.sum(axis=0), e_emit.sum(axis=0), loglik.sum()


@njit(parallel=True, cache=True)
def _forward(lo, hi, order, start, band, t0, t1, prior, trans, emit, n_states, alpha_in, started_in, alpha_out,
             started_out):
    """Advance each customer's filtered distribution through months t0 .. t1 - 1 (alpha_in after month t0 - 1;
    a customer not yet started takes its prior at its first observed month). Customers in two fixed runs,
    one per thread, with their scratch allocated once."""
    Z = prior.shape[1]
    cum = _cumulative(emit)
    n_cust = len(start) - 1
    n_runs = 2
    run = (n_cust + n_runs - 1) // n_runs
    for r in prange(n_runs):
        e = np.empty(Z)
        pred = np.empty(Z)
        cur = np.empty(Z)
        for c in range(r * run, min(n_cust, (r + 1) * run)):
            for z in range(Z):
                cur[z] = alpha_in[c, z]
            on = started_in[c]
            for t in range(t0, t1):
                seen = _emission(lo, hi, order, start[c], start[c + 1], t, cum, e)
                if not on:
                    if not seen:
                        continue
                    for z in range(Z):
                        pred[z] = prior[band[c], z]
                    on = True
                else:
                    _predict(cur, trans, n_states, pred)
                total = 0.0
                for z in range(Z):
                    cur[z] = pred[z] * e[z]
                    total += cur[z]
                for z in range(Z):
                    cur[z] = cur[z] / total if total > FLOOR else pred[z]
            for z in range(Z):
                alpha_out[c, z] = cur[z]
            started_out[c] = on


class LatentStateFilter:
    """Mixture of `n_classes` Markov chains of `n_states` states over customers' monthly outcome intervals.

    `fit(history, day)` runs EM on what is known at the end of `day` (deterministic: a fixed start; the classes
    then ordered from the slowest to leave the healthiest state to the fastest);
    `transform(history, account_id, as_of)` gives, per (account, T), the columns `get_feature_names_out`
    names, from the account's customer's record as known at T. The class prior depends on the income band
    when the accounts have one (bands unseen at fit, or missing, take the pooled prior).
    """

    def __init__(self, n_classes: int = 3, n_states: int = 4, max_iter: int = 30, tol: float = 1e-5,
                 horizon_months: int = 6, max_customers: int = 50_000, random_state: int = 0) -> None:
        self.n_classes, self.n_states, self.max_iter, self.tol = n_classes, n_states, max_iter, tol
        self.horizon_months, self.max_customers, self.random_state = horizon_months, max_customers, random_state

    def _check(self) -> None:
        for name, least in (("n_classes", 1), ("n_states", 2), ("max_iter", 1), ("horizon_months", 1),
                            ("max_customers", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
                raise ValueError(f"LatentStateFilter: {name} must be a whole number >= {least}, got {value!r}")

    def _start(self, n_bands: int):
        K, S = self.n_classes, self.n_states
        level = np.arange(S)
        trans = np.empty((K, S, S))
        for k in range(K):
            speed = 0.5 * 4.0 ** (k / max(K - 1, 1))  # classes from slow to fast worsening
            p = 0.04 / np.maximum(np.abs(level[:, None] - level[None, :]), 1) ** 2
            p = np.where(level[None, :] > level[:, None], p * speed, p / np.sqrt(speed))
            np.fill_diagonal(p, 0.0)
            np.fill_diagonal(p, 1.0 - p.sum(axis=1))
            trans[k] = p
        emit = np.empty((K, S, N_CAT))
        tilt = np.array([0.0, 0.0, 1.0, 1.5, 2.0, 3.0])
        for s in range(S):
            w = np.array([0.3, 0.6, 0.04, 0.02, 0.03, 0.01]) * np.exp(tilt * 3.6 * s / max(S - 1, 1))
            emit[:, s] = w / w.sum()
        prior = np.zeros((n_bands, K, S))
        prior[:, :, 0] = 0.8
        prior[:, :, 1:] = 0.2 / (S - 1)
        return prior.reshape(n_bands, K * S) / K, trans, emit

    def band_codes(self, income_band: np.ndarray) -> np.ndarray:
        """Each account's prior row: 1 + the position of its band among those seen at fit, 0 (pooled) else."""
        band = np.asarray(income_band, dtype=np.float64)
        pos = np.searchsorted(self.band_values_, band)
        hit = np.isfinite(band) & (pos < len(self.band_values_))
        hit[hit] = self.band_values_[pos[hit]] == band[hit]
        return np.where(hit, pos + 1, 0).astype(np.int64)

    def fit(self, history: BillOutcomes, day: int) -> LatentStateFilter:
        """EM on the outcomes known at the end of `day` (int days since 1970-01-01)."""
        self._check()
        last = int(month_number(np.array([day]))[0])
        first = history.first_month
        if not len(history.month) or last < first:
            raise ValueError(f"LatentStateFilter.fit: no bill is due by {np.datetime64(int(day), 'D')}: fit on a "
                             "later date")
        lo, hi = history.as_of(day, first, last - first + 1)
        if not (lo >= 0).any():
            raise ValueError(f"LatentStateFilter.fit: no bill is due by {np.datetime64(int(day), 'D')}: fit on a "
                             "later date")
        band = np.asarray(history.income_band, dtype=np.float64)
        self.band_values_ = np.unique(band[np.isfinite(band)])
        # EM on a seeded sample of customers: ~130 parameters need far fewer than a portfolio's customers
        customers = Customers.group(history.customer_id, self.band_codes(band)).sample(self.max_customers,
                                                                                       self.random_state)
        prior, trans, emit = self._start(len(self.band_values_) + 1)
        self.loglik_ = []
        for _ in range(self.max_iter):
            n_prior, n_trans, n_emit, ll = _estep(lo, hi, customers.order, customers.start, customers.band,
                                                  lo.shape[1], prior, trans, emit, self.n_states)
            self.loglik_.append(float(ll))
            n_prior[0] = n_prior.sum(axis=0)  # row 0: the pooled prior, for bands unknown or unseen
            prior = (n_prior + 1e-3) / (n_prior + 1e-3).sum(axis=1, keepdims=True)
            trans = (n_trans + 1e-6) / (n_trans + 1e-6).sum(axis=2, keepdims=True)
            emit = (n_emit + 1e-3) / (n_emit + 1e-3).sum(axis=2, keepdims=True)
            if len(self.loglik_) > 1 and abs(self.loglik_[-1] - self.loglik_[-2]) <= self.tol * abs(self.loglik_[-1]):
                break
        # classes in a fixed order, from the slowest to leave the healthiest state to the fastest: EM may swap
        # them, and a column's meaning (and its reason text) must not depend on that
        order = np.argsort(-trans[:, 0, 0], kind="stable")
        K, S = self.n_classes, self.n_states
        self.prior_ = prior.reshape(-1, K, S)[:, order].reshape(-1, K * S)
        self.trans_, self.emit_ = trans[order], emit[order]
        self.n_iter_, self.fit_day_ = len(self.loglik_), int(day)
        return self

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"latent_missed_{self.horizon_months}m"]
                        + [f"latent_class{k}" for k in range(self.n_classes)]
                        + [f"latent_state{s}" for s in range(self.n_states)], dtype=object)

    def transform(self, history: BillOutcomes, account_id: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """(rows x features) for each (account_id, as_of) row, each from what is known at the end of its as_of.

        Months three or more before T's month are final at any T (a bill is known 30 days after its due
        date at the latest): they are filtered once, in date order, and only the last three months are
        filtered again for each T, with the intervals known at T."""
        days = np.asarray(as_of).astype("datetime64[D]").astype(np.int64)
        row_acc = np.searchsorted(history.account_id, np.asarray(account_id, dtype=np.int64))
        if len(row_acc) and (row_acc.max() >= len(history.account_id)
                             or not np.array_equal(history.account_id[row_acc], account_id)):
            raise ValueError("LatentStateFilter.transform: some account_id values are not in the history")
        out = np.full((len(days), len(self.get_feature_names_out())), np.nan)
        if not len(days):
            return out
        codes = self.band_codes(history.income_band)
        customers = Customers.group(history.customer_id, codes)
        first = history.first_month
        wanted = np.unique(days)
        n = int(month_number(wanted[-1:])[0]) - first + 1
        final_lo, final_hi = history.as_of(int(wanted[-1]), first, max(n, 1))
        alpha, started = self._empty(len(customers.start) - 1)
        done = 0  # months filtered into (alpha, started)
        by_day = np.argsort(days, kind="stable")  # each as-of date's rows, one slice of it
        bounds = np.searchsorted(days[by_day], np.r_[wanted, wanted[-1] + 1])
        for i, day in enumerate(wanted):
            m = int(month_number(np.array([day]))[0]) - first
            cut = max(m - 2, 0)
            if cut > done:
                alpha, started = self._advance(final_lo, final_hi, customers, done, cut, alpha, started)
                done = cut
            a_t, s_t = alpha, started
            if m >= cut and m >= 0:
                lo, hi = history.as_of(int(day), first + cut, m - cut + 1)
                a_t, s_t = self._advance(lo, hi, customers, 0, m - cut + 1, alpha, started)
            rows = by_day[bounds[i]:bounds[i + 1]]
            cust = customers.of_account[row_acc[rows]]
            out[rows] = self._features(a_t[cust], s_t[cust], codes[row_acc[rows]])
        return out

    def _empty(self, n_customers: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((n_customers, self.n_classes * self.n_states)), np.zeros(n_customers, np.bool_)

    def _advance(self, lo, hi, customers: Customers, t0: int, t1: int, alpha, started):
        out, on = np.empty_like(alpha), np.empty_like(started)
        _forward(np.ascontiguousarray(lo, np.int8), np.ascontiguousarray(hi, np.int8), customers.order,
                 customers.start, customers.band, t0, t1, self.prior_, self.trans_, self.emit_, self.n_states,
                 alpha, started, out, on)
        return out, on

    def _features(self, alpha: np.ndarray, started: np.ndarray, band: np.ndarray) -> np.ndarray:
        """The chance of a missed month within the horizon, and the posteriors of class and of state; a
        customer with nothing observed yet has its band's prior. The chance is linear in the distribution:
        one product with the chance, from each hidden value, of the horizon passing without a missed month."""
        K, S = self.n_classes, self.n_states
        dist = np.where(started[:, None], alpha, self.prior_[band])
        # one product gives every column: minus the survival chance, then the sums over states (a class's
        # posterior) and over classes (a state's); numpy's strided sums over the small axes cost twice as much
        z = np.arange(K * S)
        weights = np.column_stack([-self._survival(), z[:, None] // S == np.arange(K), z[:, None] % S == np.arange(S)])
        out = dist @ weights
        out[:, 0] += 1.0
        return out

    def _survival(self) -> np.ndarray:
        """P(no missed month in the next horizon months | hidden value now), one number per hidden value."""
        K, S = self.n_classes, self.n_states
        step = np.zeros((K * S, K * S))
        for k in range(K):
            step[k * S:(k + 1) * S, k * S:(k + 1) * S] = self.trans_[k]
        step = step * (1.0 - self.emit_[:, :, MISSED].reshape(K * S))[None, :]  # move, then show no miss
        return np.linalg.matrix_power(step, self.horizon_months) @ np.ones(K * S)

    def catalog_features(self) -> list[Feature]:
        """The columns as catalog features: descriptions for reason codes, risk directions for LightGBM."""
        names = self.get_feature_names_out()
        # the posteriors are the filter's own coordinates, which no customer can check: the record's features
        # say what happened, so they are never the reason given
        summary = NotAReason("a model's summary of the record that no customer can check")
        out = [Feature(names[0], f"chance of a missed payment (30+ days) in the next {self.horizon_months} months, "
                       "from the customer's whole repayment record (latent-state filter)", +1, "latent",
                       reason=Reason("the whole repayment record points to a {value} chance of a payment 30 or more "
                                     f"days late in the next {self.horizon_months} months", "share"))]
        out += [Feature(n, f"how much the customer's whole repayment record looks like lasting habit {k + 1} of "
                        f"{self.n_classes} (latent-state filter; habits ordered from slow to fast worsening)", 0,
                        "latent", reason=summary) for k, n in enumerate(names[1:1 + self.n_classes])]
        out += [Feature(n, f"how much the customer's recent months look like state {s + 1} of {self.n_states} "
                        "(latent-state filter; 1 is the healthiest)", 0, "latent", reason=summary)
                for s, n in enumerate(names[1 + self.n_classes:])]
        return out

    def to_dict(self) -> dict:
        return {"n_classes": self.n_classes, "n_states": self.n_states, "horizon_months": self.horizon_months,
                "feature_names": list(self.get_feature_names_out()), "band_values": self.band_values_.tolist(),
                "prior": self.prior_.tolist(), "trans": self.trans_.tolist(), "emit": self.emit_.tolist(),
                "fit_day": self.fit_day_, "n_iter": self.n_iter_, "loglik": self.loglik_}

    @classmethod
    def from_dict(cls, d: dict) -> LatentStateFilter:
        try:
            f = cls(int(d["n_classes"]), int(d["n_states"]), horizon_months=int(d["horizon_months"]))
            f.band_values_ = np.asarray(d["band_values"], dtype=np.float64)
            f.prior_, f.trans_, f.emit_ = (np.asarray(d[k], dtype=np.float64) for k in ("prior", "trans", "emit"))
            f.fit_day_, f.n_iter_, f.loglik_ = int(d["fit_day"]), int(d["n_iter"]), list(d["loglik"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"latent-state filter parameters are incomplete or malformed ({exc!r})") from None
        K, S = f.n_classes, f.n_states
        shapes = {"prior": (len(f.band_values_) + 1, K * S), "trans": (K, S, S), "emit": (K, S, N_CAT)}
        for name, shape in shapes.items():
            if getattr(f, f"{name}_").shape != shape:
                raise ValueError(f"latent-state filter parameter {name} has shape {getattr(f, f'{name}_').shape}, "
                                 f"expected {shape}")
        return f


def add_latent_features(frame: pd.DataFrame, history: BillOutcomes, latent: LatentStateFilter | None) -> pd.DataFrame:
    """`frame` (account_id, as_of, features...) with the filter's columns after the others, each row's from what
    was known at its as_of: what a model trained with the filter reads besides the catalog's features."""
    if latent is None:
        return frame
    names = list(latent.get_feature_names_out())
    block = latent.transform(history, frame["account_id"].to_numpy(), frame["as_of"].to_numpy())
    keys = ["account_id", "as_of"]
    others = [c for c in frame.columns if c not in keys and c not in names]
    # one float block for every feature, as the builder's frame has: columns added one by one (or a second
    # block) made reading the features back as a matrix slower than computing them
    values = np.empty((len(frame), len(others) + len(names)), order="F")
    values[:, :len(others)] = frame[others].to_numpy(np.float64)
    values[:, len(others):] = block
    out = pd.DataFrame(values, columns=others + names, index=frame.index, copy=False)
    for i, key in enumerate(keys):
        out.insert(i, key, frame[key].to_numpy())
    return out


def with_latent(catalog: Catalog, latent: LatentStateFilter | None) -> Catalog:
    """The catalog a model with this filter reads: its own features, then the filter's."""
    return catalog if latent is None else catalog.with_features(*latent.catalog_features())


def taken_by_latent() -> dict[str, str]:
    """The names the filter's features take (at its default settings), each with what holds it: a column brought
    from outside (features.extra) may not take one."""
    return dict.fromkeys(LatentStateFilter().get_feature_names_out(), "a latent-state feature")
