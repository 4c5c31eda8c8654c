"""What must hold around the computation, whatever the caller's process and inputs:
memory at odd offsets, forks in every order of use, torch releases without the
private names arraykit binds, and NumPy subclasses whose operators differ.

``.ci/native-builds`` runs this module (with ``test_native.py``) against the
kernels built as C99 without threads, by clang, and under the
undefined-behaviour sanitizer, where a misaligned read aborts the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

import arraykit as ak

from .reference import sigmoid as sigmoid_reference

# --- memory at odd offsets ---------------------------------------------------


def _at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """``a``'s values in memory that starts ``offset`` bytes into a buffer (misaligned
    for offsets that are not multiples of the item size)."""
    raw = bytearray(offset + a.nbytes)
    view = np.frombuffer(raw, dtype=a.dtype, count=a.size, offset=offset).reshape(a.shape)
    view[...] = a
    return view


CALLS = {
    "sigmoid": lambda a, b: ak.sigmoid(a),
    "sigmoid_derivative": lambda a, b: ak.sigmoid_derivative(a),
    "softmax": lambda a, b: ak.softmax(a),
    "normalize_rows": lambda a, b: ak.normalize_rows(a.reshape(-1, a.shape[-1])),
    "l1_loss sum": lambda a, b: ak.l1_loss(a, b, reduction="sum"),
    "l2_loss mean": lambda a, b: ak.l2_loss(a, b),
    "l2_loss none": lambda a, b: ak.l2_loss(a, b, reduction="none"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("offset", [1, 2, 3, 4])
@pytest.mark.parametrize("call", list(CALLS))
def test_misaligned_memory_gives_the_aligned_values(call: str, offset: int, dtype: str) -> None:
    """Arrays at odd offsets give the bits of the same values in aligned memory (the
    kernels read through typed pointers, so they take an aligned copy; under the
    sanitizer a misaligned read would abort)."""
    rng = np.random.default_rng(offset)
    for shape in [(37,), (5, 3), (16, 33), (4000,)]:
        a = (rng.normal(size=shape) * 20).astype(dtype)
        b = rng.normal(size=shape).astype(dtype)
        a[..., 0] = -710.0 if dtype == "float64" else -100.0  # the subnormal tail
        shifted_a, shifted_b = _at_offset(a, offset), _at_offset(b, offset)
        assert shifted_a.flags.aligned == (offset % a.itemsize == 0)
        expected = CALLS[call](a, b)
        np.testing.assert_array_equal(CALLS[call](shifted_a, shifted_b), expected)
        np.testing.assert_array_equal(CALLS[call](shifted_a, b), expected)


def test_the_compiled_kernels_decline_misaligned_memory() -> None:
    """Each kernel refuses memory it would read misaligned, as a buffer and as an address."""
    from arraykit._native import numpy as kernels

    if kernels.compiled is None:
        pytest.skip("built without the compiled kernels")
    compiled = kernels.compiled
    x = _at_offset(np.linspace(-3.0, 3.0, 64), 4)
    aligned = np.linspace(-3.0, 3.0, 64)
    out = np.empty(64)
    assert not compiled.sigmoid(x, out)
    assert not compiled.sigmoid_derivative(x, out)
    assert not compiled.softmax_rows(x, out, 8)
    assert not compiled.normalize_rows(x, out, 8)
    assert compiled.loss_sum(x, aligned, 2) is None
    assert not compiled.loss_elements(aligned, x, out, 1)
    address = (x.__array_interface__["data"][0], x.size, "d")
    assert not compiled.sigmoid(address, out)
    assert compiled.sigmoid(aligned, out)  # the same call on aligned memory is served


def test_misaligned_torch_tensors_give_the_aligned_values() -> None:
    torch = pytest.importorskip("torch")
    values = np.linspace(-800.0, 40.0, 2001)
    shifted = torch.from_numpy(_at_offset(values, 4))
    plain = torch.from_numpy(values)
    for name in ("sigmoid_derivative", "softmax", "l2_loss"):
        f = getattr(ak, name)
        args = (shifted, plain) if name == "l2_loss" else (shifted,)
        expected = f(*((plain, plain) if name == "l2_loss" else (plain,)))
        assert torch.equal(f(*args), expected), name
    # torch.sigmoid's own kernel serves the sigmoid's value: compare with the reference.
    got = ak.sigmoid(shifted).numpy()
    np.testing.assert_allclose(got, sigmoid_reference(values), rtol=4e-16, atol=1e-300)


# --- forks in every order --------------------------------------------------

_PARENT_FIRST = {
    "nothing": "",
    "torch's own operator": "torch.exp(t)",
    "arraykit on a tensor": "ak.sigmoid_derivative(t)",
    "arraykit on NumPy": "ak.softmax(m)",
    "all of them": "torch.exp(t); ak.sigmoid_derivative(t); ak.softmax(m)",
}

_FORK_SCRIPT = """
import faulthandler, os, sys, warnings
warnings.simplefilter("ignore")  # fork with threads: Python's DeprecationWarning
import numpy as np, torch
import arraykit as ak

torch.set_num_threads(2)
t = torch.linspace(-30, 30, 1 << 21, dtype=torch.float64)
m = np.linspace(-30, 30, 1 << 21).reshape(1024, -1)
{parent}
pid = os.fork()
if pid == 0:
    faulthandler.dump_traceback_later(60, exit=True)  # a hang ends the child, with its stack
    a = ak.sigmoid_derivative(t)
    b = ak.softmax(m)
    c = ak.l2_loss(m, m[::-1])
    # Checked in NumPy: torch's own threaded operators hang in this child once the
    # parent's ran (torch.linspace above), which is torch's affair.
    ok = np.isfinite(a.numpy()).all() and np.isfinite(b).all() and np.isfinite(c)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("first", list(_PARENT_FIRST))
def test_a_forked_child_computes_whatever_the_parent_ran_first(first: str) -> None:
    """A child forked after torch's OpenMP team, arraykit's pool, both or neither ran
    computes arraykit's calls on tensors and NumPy arrays with threads (it never waits
    on a thread pool that stayed in the parent)."""
    pytest.importorskip("torch")
    script = _FORK_SCRIPT.replace("{parent}", _PARENT_FIRST[first])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])


# --- torch without its private names --------------------------------------------

_WITHOUT_NAME_SCRIPT = """
import sys, warnings
warnings.simplefilter("error")
warnings.filterwarnings("ignore", "arraykit runs without its compiled kernels")
import torch
# The name is deleted while arraykit binds torch's names (all of them when its
# torch module is imported), as a torch release without it would have it, and
# put back after: torch's own Python code uses some of them itself.
owner, name = torch, sys.argv[1]
if name != "-":
    *path, last = name.split(".")
    for part in path:
        owner = getattr(owner, part)
    kept = getattr(owner, last)
    delattr(owner, last)

import numpy as np
import arraykit as ak
import arraykit._native.torch
from arraykit._native import _torch_private as private
if name != "-":
    assert private.bound(name) is private.FALLBACKS[name]
    setattr(owner, last, kept)

x = torch.linspace(-30, 30, 301, dtype=torch.float64)
rows = x.reshape(7, 43)
values = [ak.sigmoid(x), ak.sigmoid_derivative(x), ak.softmax(rows), ak.normalize_rows(rows),
          ak.l1_loss(x, x.flip(0)), ak.l2_loss(x, x.flip(0), reduction="none"),
          torch.func.vmap(ak.softmax)(rows)]
leaf = x.clone().requires_grad_()
ak.softmax(leaf.reshape(7, 43))[:, 0].sum().backward()
steps = [leaf.grad, torch.func.grad(lambda v: ak.sigmoid(v).sum())(x)]
model = torch.nn.Linear(3, 2).double()
torch.manual_seed(0)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.linspace(-1, 1, p.numel(), dtype=torch.float64).reshape(p.shape))
for optimizer in (ak.optim.gradient_descent(lr=0.1), ak.optim.adagrad(lr=0.5, weight_decay=0.1)):
    state = optimizer.init(list(model.parameters()))
    for _ in range(3):
        model.zero_grad()
        model(torch.ones(4, 3, dtype=torch.float64)).pow(2).sum().backward()
        state = ak.optim.step_in_place(optimizer, list(model.parameters()), state)
steps.extend(p.detach() for p in model.parameters())
torch.save({"values": values, "steps": [s.detach() for s in steps]}, sys.argv[2])
"""


try:
    from arraykit._native._torch_private import FALLBACKS as _PRIVATE_NAMES
except ImportError:  # no torch
    _PRIVATE_NAMES = {}


def _without(name: str, path: Any) -> Any:
    """The script's results with torch lacking ``name`` ("-": torch as it is)."""
    import torch

    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NAME_SCRIPT, name, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, (name, done.stderr[-3000:])
    return torch.load(path)


@pytest.fixture(scope="module")
def with_every_name(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _without("-", tmp_path_factory.mktemp("private") / "all.pt")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_PRIVATE_NAMES))
def test_every_private_torch_name_can_be_missing(
    name: str, with_every_name: Any, tmp_path: Any
) -> None:
    """Each private torch name arraykit binds, absent when arraykit binds them, as in a
    torch release without it: every call still works, with the values it has with the
    name (the fallbacks compute the same in public operations, or route through the
    general path). arraykit reads no private name later (the next test).

    The values are the same bits, except where the Autograd kernel cannot hand a call
    to the kernels below it: the formula in torch operations computes it there, within
    the contract as every path is, so within 8 ulp of the kernels' value. Derivatives
    and optimizer steps may come from autograd through the formula instead of the
    registered backward, or from one tensor's operations at a time instead of torch's
    multi-tensor ones: those agree within 4 ulp of each result's largest entry.
    """
    import torch

    without = _without(name, tmp_path / "without.pt")
    pairs = zip(without["values"], with_every_name["values"], strict=True)
    redispatch = name in ("_C._AutoDispatchBelowAutograd", "_C._after_autograd_keyset")
    for i, (got, expected) in enumerate(pairs):
        if redispatch:
            a, b = got.numpy(), expected.numpy()
            assert (np.abs(a - b) <= 8 * np.spacing(np.abs(b))).all(), f"{name}: value {i}"
        else:
            assert torch.equal(got, expected), f"{name}: value {i}"
    pairs = zip(without["steps"], with_every_name["steps"], strict=True)
    for i, (got, expected) in enumerate(pairs):
        bound = 4 * float(np.spacing(float(expected.abs().max())))
        assert float((got - expected).abs().max()) <= bound, f"{name}: derivative or step {i}"


def test_the_private_names_are_all_guarded() -> None:
    """No private torch name is bound outside the guarded table."""
    import re
    from pathlib import Path

    package = Path(ak.__file__).parent
    pattern = re.compile(r"\b(?:torch|forward_ad)\._(?!_)\w+")  # dunders are public
    found = {
        f"{p.relative_to(package)}: {m.group(0)}"
        for p in package.rglob("*.py")
        if p.name != "_torch_private.py"
        for m in pattern.finditer(p.read_text())
    }
    assert not found, sorted(found)


# --- NumPy subclasses ------------------------------------------------------------


def test_np_matrix_is_refused_by_name() -> None:
    """np.matrix's ``*`` is a matrix product and its reductions keep two axes: the
    formulas would compute something else, so every function refuses it by name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # "not recommended"
        m = np.matrix([[3e-160, 1e-160], [2e-160, 5e-160]])
    zeros = np.zeros((2, 2))
    for call, name in [
        (lambda: ak.l2_loss(m, zeros), "yhat"),
        (lambda: ak.l2_loss(zeros, m), "y"),
        (lambda: ak.l1_loss(zeros, m, reduction="none"), "y"),
        (lambda: ak.sigmoid(m), "x"),
        (lambda: ak.sigmoid_derivative(m), "x"),
        (lambda: ak.softmax(m), "x"),
        (lambda: ak.normalize_rows(m), "x"),
    ]:
        with pytest.raises(TypeError, match=rf"^{name} must be .*numpy\.matrix.*np\.asarray"):
            call()
    # As plain arrays the same values are right: Σ(x²) = 3.9e-319.
    assert float(ak.l2_loss(np.asarray(m), zeros, reduction="sum")) == pytest.approx(
        3.9e-319, rel=1e-3
    )


def test_subclasses_keeping_ndarrays_operators_are_computed(tmp_path: Any) -> None:
    """np.memmap (and any subclass that keeps ndarray's operators) is read as a plain
    array: the same values as its ndarray."""
    mapped = np.memmap(tmp_path / "x.bin", dtype=np.float64, mode="w+", shape=(3, 5))
    mapped[...] = np.arange(15.0).reshape(3, 5) - 7
    plain = np.array(mapped)
    for f in (ak.sigmoid, ak.softmax, ak.normalize_rows):
        got = f(mapped)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, f(plain))
