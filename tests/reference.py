"""Independent references, computed with mpmath, and the inputs that probe them.

Every reference works on the exact values of its inputs (as the tested dtype
holds them), computes at 113-bit precision with exact sums and differences,
and rounds once to float64. None of it shares code with arraykit.
"""

from __future__ import annotations

import functools

import mpmath as mp
import numpy as np

from .assertions import _FORMAT, _MAX_EXPONENT

mp.mp.prec = 113


def _exact(x: float) -> mp.mpf:
    return mp.mpf(float(x))


def _rounded(value: mp.mpf) -> float:
    return float(value)


def _residual(value: mp.mpf) -> float:
    """What rounding to float64 left out: ``value − float(value)``, rounded."""
    return float(value - float(value))


def sample(dtype: str, n: int, seed: int) -> np.ndarray:
    """``n`` values drawn from :func:`finite_values` (landmarks included)."""
    return np.random.default_rng(seed).choice(finite_values(dtype, 4 * n, seed), n)


def finite_values(dtype: str, n: int, seed: int) -> np.ndarray:
    """Finite values spread over the whole range of ``dtype``, with landmarks.

    Half are in [-40, 40] where the activations change fastest; the rest have
    log-uniform magnitudes from the smallest subnormal to the largest finite
    value. The landmarks are where textbook formulas break.
    """
    rng = np.random.default_rng(seed)
    mantissa, emin = _FORMAT[dtype]
    emax = _MAX_EXPONENT[dtype]
    moderate = rng.uniform(-40, 40, n // 2)
    exponents = rng.uniform(emin - mantissa, emax, n - n // 2)
    wide = rng.choice([-1.0, 1.0], exponents.size) * np.exp2(exponents)
    largest = (2 - 2.0**-mantissa) * 2.0**emax
    landmarks = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0**emin,
        -(2.0**emin),
        2.0 ** (emin - mantissa),
        17.0,
        -17.0,
        37.0,
        -37.0,
        88.7,
        -88.7,
        -103.0,
        709.7,
        -709.7,
        -745.0,
        largest,
        -largest,
    ]
    values = np.concatenate([landmarks, moderate, wide])
    return np.clip(values, -largest, largest)


@functools.cache
def _elementwise(name: str, data: bytes, residual: bool = False) -> np.ndarray:
    x = np.frombuffer(data, dtype=np.float64)
    rounded = _residual if residual else _rounded

    def sigmoid(v: float) -> float:
        return rounded(1 / (1 + mp.exp(-_exact(v))))

    def sigmoid_derivative(v: float) -> float:
        e = mp.exp(-abs(_exact(v)))
        return rounded(e / (1 + e) ** 2)

    def sigmoid_second_derivative(v: float) -> float:
        # -sign(x)·e·(1 - e)/(1 + e)³ with e = exp(-|x|): 1 - e through expm1,
        # which keeps its relative accuracy where 1 - 2σ(x) cancels (tiny x).
        t = -abs(_exact(v))
        e = mp.exp(t)
        return rounded(-mp.sign(_exact(v)) * e * -mp.expm1(t) / (1 + e) ** 3)

    function = {
        "sigmoid": sigmoid,
        "sigmoid_derivative": sigmoid_derivative,
        "sigmoid_second_derivative": sigmoid_second_derivative,
    }[name]
    return np.array([function(v) for v in x])


def sigmoid(x: np.ndarray, residual: bool = False) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x); with ``residual``, what its rounding to float64 left out."""
    x = np.array(x, dtype=np.float64, order="C")
    return _elementwise("sigmoid", x.tobytes(), residual).reshape(x.shape)


def sigmoid_derivative(x: np.ndarray, residual: bool = False) -> np.ndarray:
    """σ'(x) = e^-|x| / (1 + e^-|x|)²; ``residual`` as for :func:`sigmoid`."""
    x = np.array(x, dtype=np.float64, order="C")
    return _elementwise("sigmoid_derivative", x.tobytes(), residual).reshape(x.shape)


def sigmoid_second_derivative(x: np.ndarray) -> np.ndarray:
    """σ''(x) = σ(x)·(1 - σ(x))·(1 - 2σ(x))."""
    x = np.array(x, dtype=np.float64, order="C")
    return _elementwise("sigmoid_second_derivative", x.tobytes()).reshape(x.shape)


def softmax_rows(x: np.ndarray, residual: bool = False) -> np.ndarray:
    """Softmax of each row of a finite 2-D array; ``residual`` as for :func:`sigmoid`."""
    rounded = _residual if residual else _rounded
    out = np.empty(x.shape)
    for i, row in enumerate(np.asarray(x, dtype=np.float64)):
        exact = [_exact(v) for v in row]
        top = max(exact)
        terms = [mp.exp(mp.fsub(v, top, exact=True)) for v in exact]
        total = mp.fsum(terms)
        out[i] = [rounded(t / total) for t in terms]
    return out


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Each row of a finite 2-D array divided by its Euclidean norm (zero rows stay 0)."""
    out = np.empty(x.shape)
    for i, row in enumerate(np.asarray(x, dtype=np.float64)):
        exact = [_exact(v) for v in row]
        squares = mp.fsum([mp.fmul(v, v, exact=True) for v in exact])
        norm = mp.sqrt(squares)
        out[i] = [_rounded(v / norm) if norm else 0.0 for v in exact]
    return out


def loss(
    yhat: np.ndarray, y: np.ndarray, power: int, reduction: str, copies: int = 1
) -> np.ndarray:
    """Σ|yhat - y|^power (or the mean, or elementwise), exactly, then rounded.

    ``copies``: the reduced loss of the inputs repeated that many times.
    """
    pairs = zip(np.ravel(yhat).astype(np.float64), np.ravel(y).astype(np.float64), strict=True)
    terms = [abs(mp.fsub(_exact(a), _exact(b), exact=True)) ** power for a, b in pairs]
    if reduction == "none":
        return np.array([_rounded(t) for t in terms]).reshape(np.shape(y))
    total = mp.fsum(terms) * copies
    if reduction == "mean":
        total = total / (len(terms) * copies) if terms else mp.nan
    return np.array(_rounded(total))


def _softplus(v: mp.mpf) -> mp.mpf:
    return mp.log1p(mp.exp(v))


@functools.cache
def _softplus_of(v: float) -> float:
    return _rounded(_softplus(_exact(v)))


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x), with mpmath's log1p (accurate for arguments of any size)."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([_softplus_of(float(v)) for v in x.ravel()]).reshape(x.shape)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log σ(x) = −log(1 + e^−x)."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([-_softplus_of(-float(v)) for v in x.ravel()]).reshape(x.shape)


@functools.cache
def _shifted_row(row: tuple[float, ...]) -> tuple[mp.mpf, tuple[mp.mpf, ...], mp.mpf]:
    """(m, the exact differences x − m, log1p of the other entries' Σ e^(x − m)), with m
    the first maximum; cached, as the tests ask for the same rows in every layout."""
    exact = [_exact(v) for v in row]
    top = max(range(len(exact)), key=lambda i: exact[i])
    differences = tuple(mp.fsub(v, exact[top], exact=True) for v in exact)
    rest = mp.fsum([mp.exp(d) for i, d in enumerate(differences) if i != top])
    return exact[top], differences, mp.log1p(rest)


def _log_softmax_row(row: np.ndarray) -> list[mp.mpf]:
    """Each entry's log-share, exactly: (x − m) − log1p(Σ over the other entries of
    e^(x − m)), so that a share near 1 keeps its digits."""
    _, differences, rest = _shifted_row(tuple(float(v) for v in row))
    return [d - rest for d in differences]


def _rows_of(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    moved = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    return moved.reshape(-1, moved.shape[-1]), moved.shape


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The log-softmax of finite ``x`` along ``axis``."""
    rows, shape = _rows_of(x, axis)
    out = np.array([[_rounded(v) for v in _log_softmax_row(r)] for r in rows])
    return np.moveaxis(out.reshape(shape), -1, axis)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log Σ e^x of finite ``x`` along ``axis`` (reduced), as m + log1p(rest)."""
    rows, shape = _rows_of(x, axis)
    out = []
    for row in rows:
        top, _, rest = _shifted_row(tuple(float(v) for v in row))
        out.append(_rounded(top + rest))
    return np.array(out).reshape(shape[:-1])


def cross_entropy_gradient(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d/dlogits of Σ −log softmax(row)[label] (rows along the last axis): the softmax,
    with the label's entry minus the sum of the others' (exact, then rounded)."""
    out = np.empty(np.shape(logits))
    for i, (row, k) in enumerate(zip(np.asarray(logits, dtype=np.float64), labels, strict=True)):
        logs = _log_softmax_row(row)
        shares = [mp.exp(v) for v in logs]
        out[i] = [_rounded(v) for v in shares]
        out[i, int(k)] = _rounded(-mp.fsum([v for j, v in enumerate(shares) if j != int(k)]))
    return out


def _reduced(terms: list[mp.mpf], reduction: str, shape: tuple[int, ...]) -> np.ndarray:
    if reduction == "none":
        return np.array([_rounded(t) for t in terms]).reshape(shape)
    total = mp.fsum(terms)
    if reduction == "mean":
        total = total / len(terms) if terms else mp.nan
    return np.array(_rounded(total))


def binary_cross_entropy_with_logits(
    z: np.ndarray, y: np.ndarray, reduction: str = "none", weights: np.ndarray | None = None
) -> np.ndarray:
    """(1 − y)·log(1 + e^z) + y·log(1 + e^−z), times the weights, reduced."""
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(z) if weights is None else np.broadcast_to(weights, z.shape)
    terms = [
        _exact(c) * ((1 - _exact(b)) * _softplus(_exact(a)) + _exact(b) * _softplus(-_exact(a)))
        for a, b, c in zip(z.ravel(), y.ravel(), np.ravel(w), strict=True)
    ]
    return _reduced(terms, reduction, z.shape)


def binary_cross_entropy(
    p: np.ndarray, y: np.ndarray, reduction: str = "none", weights: np.ndarray | None = None
) -> np.ndarray:
    """−y·log p − (1 − y)·log(1 − p) (0·log 0 = 0), times the weights, reduced."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(p) if weights is None else np.broadcast_to(weights, p.shape)

    def one(a: float, b: float) -> mp.mpf:
        first = -_exact(b) * mp.log(_exact(a)) if b != 0 else mp.mpf(0)
        second = -(1 - _exact(b)) * mp.log1p(-_exact(a)) if b != 1 else mp.mpf(0)
        return first + second

    terms = [
        _exact(c) * one(a, b) for a, b, c in zip(p.ravel(), y.ravel(), np.ravel(w), strict=True)
    ]
    return _reduced(terms, reduction, p.shape)


def cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    axis: int = -1,
    reduction: str = "none",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """−log softmax at the class index (integer ``target``) or −Σ target·log softmax
    (floating ``target``, of ``logits``' shape) along ``axis``, weighted, reduced."""
    rows, shape = _rows_of(logits, axis)
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        labels = target.reshape(-1)
        terms = [-_log_softmax_row(r)[int(k)] for r, k in zip(rows, labels, strict=True)]
    else:
        probabilities, _ = _rows_of(target, axis)
        terms = [
            -mp.fsum([_exact(t) * v for t, v in zip(q, _log_softmax_row(r), strict=True) if t])
            for r, q in zip(rows, probabilities, strict=True)
        ]
    if weights is not None:
        w = np.broadcast_to(weights, shape[:-1]).reshape(-1)
        terms = [_exact(c) * t for c, t in zip(w, terms, strict=True)]
    return _reduced(terms, reduction, shape[:-1])


def special_rows(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The registry's special rows of operation ``name`` and their exact results, as
    two 2-D arrays (``arraykit/_operations.py``)."""
    from arraykit._operations import BY_NAME

    rows, limits = zip(*BY_NAME[name].special, strict=True)
    return np.array(rows), np.array(limits)
