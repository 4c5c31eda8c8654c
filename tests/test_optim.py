"""The optimizers, against torch.optim on the same gradients, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import arraykit as ak
from backends import Backend

torch = pytest.importorskip("torch")

SETTINGS = {
    "defaults": {},
    "classic-eps0": {"eps": 0.0},
    "accumulator": {"initial_accumulator_value": 0.1},
    "lr_decay": {"lr_decay": 0.01},
    "weight_decay": {"weight_decay": 0.1},
    "everything": {
        "eps": 1e-6,
        "initial_accumulator_value": 0.5,
        "lr_decay": 1e-3,
        "weight_decay": 0.05,
    },
}
STEPS = 1000
TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


TARGET = np.array([9.0, -21.0, 5.5])
SCALE = np.array([1.0, 30.0, 1e-3])


def _gradient(xp: Any, params: Any) -> Any:
    """A smooth, non-quadratic gradient that no coordinate meets at exactly 0."""
    return xp.asarray(SCALE, dtype=params.dtype) * (
        xp.sin(3.0 * params) + 0.5 * (params - xp.asarray(TARGET, dtype=params.dtype))
    )


def _torch_run(optimizer: Any, start: np.ndarray, dtype: str, steps: int = STEPS) -> np.ndarray:
    p = torch.tensor(start, dtype=getattr(torch, dtype), requires_grad=True)
    opt = optimizer([p])
    path = [p.detach().numpy().copy()]
    for _ in range(steps):
        with torch.no_grad():
            p.grad = _gradient(torch, p.detach())
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)[::50]


def _ours(
    xb: Backend, opt: ak.optim.Optimizer, start: np.ndarray, dtype: str, steps: int = STEPS
) -> np.ndarray:
    xp = xb.namespace
    device = xb.asarray(start, dtype)
    target = xb.asarray(TARGET, dtype)
    scale = xb.asarray(SCALE, dtype)

    def grad(p: Any) -> Any:
        return scale * (xp.sin(3.0 * p) + 0.5 * (p - target))

    result = ak.optimize(opt, grad, device, steps=steps, record_every=50, sync_every=100)
    return xb.to_numpy(result.history)


def _steps(xb: Backend, full: bool) -> int:
    """Dask builds a graph of ~30 tasks a step, and a cluster schedules each
    task in ~0.5 ms: the full run where the setting exercises everything,
    shorter ones for the rest."""
    if xb.remote:
        return 100 if full else 50
    return STEPS if full or not xb.lazy else 200


def _float_dtypes(xb: Backend) -> list[str]:
    return [d for d in ("float32", "float64") if d in xb.dtypes]


# Long runs whose lazy columns build a graph per step: `-m slow` runs those.
SLOW_ON_LAZY = ("test_adagrad_matches_torch", "test_gradient_descent_matches_sgd")


@pytest.mark.parametrize("setting", SETTINGS)
def test_adagrad_matches_torch(xb: Backend, setting: str) -> None:
    options = SETTINGS[setting]
    start = np.array([10.0, -20.0, 5.0])  # far from 0: relative errors stay meaningful
    steps = _steps(xb, full=setting in ("defaults", "everything"))
    for dtype in _float_dtypes(xb):
        expected = _torch_run(
            lambda ps: torch.optim.Adagrad(ps, lr=0.1, **options), start, dtype, steps
        )
        got = _ours(xb, ak.optim.adagrad(lr=0.1, **options), start, dtype, steps)
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=0, err_msg=dtype)


def test_gradient_descent_matches_sgd(xb: Backend) -> None:
    start = np.array([10.0, -20.0, 5.0])
    steps = _steps(xb, full=True)
    for dtype in _float_dtypes(xb):
        expected = _torch_run(lambda ps: torch.optim.SGD(ps, lr=0.01), start, dtype, steps)
        got = _ours(xb, ak.optim.gradient_descent(0.01), start, dtype, steps)
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=0, err_msg=dtype)


def test_zero_gradient_is_a_zero_step(xb: Backend, dtype: str) -> None:
    for eps in (0.0, 1e-10):
        opt = ak.optim.adagrad(lr=1.0, eps=eps)
        params = xb.asarray(np.array([1.0, -2.0]), dtype)
        state = opt.init(params)
        for g in ([0.0, 0.0], [0.0, 0.5], [0.0, 0.0]):
            params, state = opt.update(params, xb.asarray(np.array(g), dtype), state)
        got = xb.to_numpy(params).astype(np.float64)
        assert np.isfinite(got).all(), (eps, got)
        assert got[0] == 1.0
        # One step of lr·g/(|g| + eps), then zero steps.
        assert got[1] == (-3.0 if eps == 0 else pytest.approx(-3.0, rel=1e-9))


def test_structures_and_purity(xb: Backend) -> None:
    params = {
        "b": xb.asarray(np.array(1.0), "float64"),
        "w": (xb.asarray(np.array([2.0, 3.0]), "float64"),),
    }
    grads = {
        "b": xb.asarray(np.array(0.5), "float64"),
        "w": (xb.asarray(np.array([1.0, -1.0]), "float64"),),
    }
    before = {k: xb.to_numpy(v) for k, v in {"b": params["b"], "w": params["w"][0]}.items()}
    for opt in (ak.optim.gradient_descent(0.5), ak.optim.adagrad(lr=0.5)):
        new, _ = opt.update(params, grads, opt.init(params))
        assert set(new) == {"b", "w"}
        assert isinstance(new["w"], tuple)
        assert type(new["b"]) is type(params["b"])
        np.testing.assert_array_equal(xb.to_numpy(params["b"]), before["b"])
        np.testing.assert_array_equal(xb.to_numpy(params["w"][0]), before["w"])
    new, _ = ak.optim.gradient_descent(0.5).update(params, grads, ())
    np.testing.assert_array_equal(xb.to_numpy(new["w"][0]), [1.5, 3.5])


def test_float32_stays_float32(xb: Backend) -> None:
    if "float32" not in xb.dtypes:
        pytest.skip("no float32")
    params = xb.asarray(np.array([1.0, 2.0]), "float32")
    grads = xb.asarray(np.array([0.1, 0.2]), "float32")
    for opt in (ak.optim.gradient_descent(np.float64(0.1)), ak.optim.adagrad(lr=np.float64(0.1))):
        new, _ = opt.update(params, grads, opt.init(params))
        assert str(new.dtype).endswith("float32")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lr": 0.0}, "lr must be > 0; got 0.0"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"lr": 1.0, "eps": -1.0}, "eps must be >= 0"),
        ({"lr": 1.0, "lr_decay": float("nan")}, "lr_decay must be >= 0"),
        ({"lr": "1"}, "lr must be a Python number; got str"),
    ],
)
def test_bad_hyperparameters(options: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ak.optim.adagrad(**options)


def test_update_under_jax_jit() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    opt = ak.optim.adagrad(lr=0.1, lr_decay=0.01)
    params = jnp.array([10.0, -20.0, 5.0])
    state = opt.init(params)
    step = jax.jit(lambda p, s: opt.update(p, _gradient(jnp, p), s))
    for _ in range(STEPS):
        params, state = step(params, state)
    expected = _torch_run(
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
        np.array([10.0, -20.0, 5.0]),
        "float64",
    )
    np.testing.assert_allclose(np.asarray(params), expected[-1], rtol=1e-12)


def _train(step: Any, steps: int = 40) -> list[float]:
    """A torch training loop around ``step(model)``: the loss at each step."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    y = x @ torch.arange(1.0, 6.0, dtype=torch.float64) + 0.1 * torch.randn(
        64, generator=generator, dtype=torch.float64
    )
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    run = step(model)
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x).squeeze(-1), y)
        loss.backward()
        losses.append(loss.item())
        run()
    return losses


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: ak.optim.adagrad(lr=0.1), lambda torch, p: torch.optim.Adagrad(p, lr=0.1)),
        (
            lambda: ak.optim.adagrad(
                lr=0.05, lr_decay=1e-2, weight_decay=1e-3, initial_accumulator_value=0.1
            ),
            lambda torch, p: torch.optim.Adagrad(
                p, lr=0.05, lr_decay=1e-2, weight_decay=1e-3, initial_accumulator_value=0.1
            ),
        ),
        (lambda: ak.optim.gradient_descent(lr=0.05), lambda torch, p: torch.optim.SGD(p, lr=0.05)),
    ],
    ids=["adagrad", "adagrad-options", "gradient-descent"],
)
def test_training_a_torch_model_matches_torch_optim(ours: Any, theirs: Any) -> None:
    torch = pytest.importorskip("torch")

    def with_arraykit(model: Any) -> Any:
        opt = ours()
        state = [opt.init(model.parameters())]  # any iterable of parameters

        def run() -> None:
            state[0] = ak.optim.step_in_place(opt, model.parameters(), state[0])

        return run

    def with_torch(model: Any) -> Any:
        return theirs(torch, model.parameters()).step

    ak_losses, torch_losses = _train(with_arraykit), _train(with_torch)
    assert ak_losses[-1] < ak_losses[0] / 2  # it trains
    np.testing.assert_allclose(ak_losses, torch_losses, rtol=1e-12)


def test_step_in_place_keeps_the_leaves_and_refuses_what_it_cannot_write() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 1)
    weight = model.weight
    opt = ak.optim.gradient_descent(lr=0.1)
    with pytest.raises(ValueError, match=r"no \.grad"):
        ak.optim.step_in_place(opt, model.parameters(), opt.init(None))
    model(torch.ones(1, 2)).sum().backward()
    before = weight.detach().clone()
    ak.optim.step_in_place(opt, model.parameters(), opt.init(None))
    assert model.weight is weight
    assert weight.is_leaf
    assert weight.grad_fn is None
    np.testing.assert_allclose(weight.detach(), before - 0.1 * weight.grad)
    # NumPy arrays are written in place too; read-only ones are refused by name.
    p = np.ones(3)
    ak.optim.step_in_place(opt, [p], (), grads=[np.full(3, 2.0)])
    np.testing.assert_allclose(p, 0.8)
    p.flags.writeable = False
    with pytest.raises(TypeError, match=r"params\[0\] must be a writable array"):
        ak.optim.step_in_place(opt, [p], (), grads=[np.ones(3)])


@pytest.mark.parametrize("name", ["adagrad", "gradient_descent"])
def test_torch_multi_tensor_step_agrees_with_the_formula(name: str) -> None:
    """The multi-tensor step (no autograd) and the per-parameter formula (taken when
    the parameters record autograd history) give the same parameters and state, to the
    few ulps by which a fused multiply-add in the multi-tensor kernels differs."""
    torch = pytest.importorskip("torch")
    opt = (
        ak.optim.adagrad(lr=0.3, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.2)
        if name == "adagrad"
        else ak.optim.gradient_descent(lr=0.3)
    )
    gen = torch.Generator().manual_seed(3)
    params = {
        "w": torch.randn(4, 3, generator=gen, dtype=torch.float64),
        "b": (torch.randn(3, generator=gen, dtype=torch.float64),),
    }
    grads = [
        {
            "w": torch.randn(4, 3, generator=gen, dtype=torch.float64),
            "b": (torch.randn(3, generator=gen, dtype=torch.float64),),
        }
        for _ in range(4)
    ]
    results = []
    for recorded in (False, True):
        p = ak.optim.tree_map(lambda t, r=recorded: t.clone().requires_grad_(r), params)
        state = opt.init(p)
        for g in grads:
            p, state = opt.update(p, g, state)
        results.append((p, state))
    (fast, fast_state), (formula, formula_state) = results
    for a, b in zip(ak.optim.tree_leaves(fast), ak.optim.tree_leaves(formula), strict=True):
        assert b.grad_fn is not None  # the formula recorded its steps
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=2e-15, atol=2e-15)
    if name == "adagrad":
        pairs = zip(
            ak.optim.tree_leaves(fast_state.sum),
            ak.optim.tree_leaves(formula_state.sum),
            strict=True,
        )
        for a, b in pairs:
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), rtol=2e-15, atol=2e-15
            )
