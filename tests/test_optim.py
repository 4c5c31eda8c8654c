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

OPTIMIZERS = {
    # name: (arraykit's optimizer, torch.optim's, given its parameters)
    "sgd": (lambda: ak.optim.gradient_descent(0.01), lambda p: torch.optim.SGD(p, lr=0.01)),
    "sgd-momentum": (
        lambda: ak.optim.gradient_descent(0.01, momentum=0.9, dampening=0.1, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01),
    ),
    "sgd-nesterov": (
        lambda: ak.optim.gradient_descent(0.01, momentum=0.8, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.8, nesterov=True),
    ),
    # RMSProp's steps are about lr whatever the gradient: rates at which it has not
    # reached the minimum's neighbourhood within the run, where it would circle
    # chaotically and rounding's differences grow (torch's kernels fuse a multiply-add).
    "rmsprop": (lambda: ak.optim.rmsprop(1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    "rmsprop-everything": (
        lambda: ak.optim.rmsprop(
            lr=1e-3, alpha=0.99, eps=1e-2, weight_decay=0.01, momentum=0.5, centered=True
        ),
        lambda p: torch.optim.RMSprop(
            p, lr=1e-3, alpha=0.99, eps=1e-2, weight_decay=0.01, momentum=0.5, centered=True
        ),
    ),
    "adam": (lambda: ak.optim.adam(lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
    "adam-amsgrad": (
        lambda: ak.optim.adam(lr=0.05, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True),
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True),
    ),
    "adamw": (lambda: ak.optim.adamw(lr=0.05), lambda p: torch.optim.AdamW(p, lr=0.05)),
    "adamw-amsgrad": (
        lambda: ak.optim.adamw(lr=0.05, betas=(0.3, 0.9), weight_decay=0.1, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.3, 0.9), weight_decay=0.1, amsgrad=True),
    ),
}
STEPS = 1000
# Over a thousand steps the rounding of each (fused or not, by torch and by XLA) adds up.
TOLERANCE = {"float64": 1e-12, "float32": 4e-6}


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
    """The full run where the setting exercises everything, shorter ones for the rest;
    on Dask, whose steps are NumPy's (the same leaf-by-leaf formula) built into a graph
    of ~30 tasks a step (a cluster schedules each in ~0.5 ms), fewer."""
    if xb.remote:
        return 50 if full else 25
    if xb.lazy:
        return 200 if full else 50
    return STEPS if full else 300


def _float_dtypes(xb: Backend) -> list[str]:
    return [d for d in ("float32", "float64") if d in xb.dtypes]


# Long runs whose lazy columns build a graph per step: `-m slow` runs those.
SLOW_ON_LAZY = (
    "test_adagrad_matches_torch",
    "test_optimizers_match_torch_optim",
    "test_schedules_match_torch_lambda_lr",
)


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


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_match_torch_optim(xb: Backend, name: str) -> None:
    ours, theirs = OPTIMIZERS[name]
    start = np.array([10.0, -20.0, 5.0])
    # Dask runs the same leaf-by-leaf step as NumPy: its full run for one optimizer.
    steps = _steps(xb, full=name == "adam-amsgrad")
    for dtype in _float_dtypes(xb):
        expected = _torch_run(theirs, start, dtype, steps)
        got = _ours(xb, ours(), start, dtype, steps)
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=0, err_msg=dtype)


SCHEDULED = {
    "sgd-momentum": (
        lambda lr: ak.optim.gradient_descent(lr, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    ),
    "adagrad": (
        lambda lr: ak.optim.adagrad(lr, lr_decay=0.01),
        lambda p: torch.optim.Adagrad(p, lr=0.01, lr_decay=0.01),
    ),
    "rmsprop": (lambda lr: ak.optim.rmsprop(lr), lambda p: torch.optim.RMSprop(p, lr=0.001)),
    "adamw": (lambda lr: ak.optim.adamw(lr), lambda p: torch.optim.AdamW(p, lr=0.01)),
}
BASE_RATE = {"rmsprop": 0.001}


def _decay(t: Any) -> Any:
    return 0.995**t


def _scheduled(make: Any) -> Any:
    """torch.optim's optimizer from ``make``, with LambdaLR(_decay) stepped after each step."""

    def build(params: Any) -> Any:
        opt = make(params)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, _decay)

        class Stepped:
            def step(self) -> None:
                opt.step()
                scheduler.step()

        return Stepped()

    return build


@pytest.mark.parametrize("name", SCHEDULED)
def test_schedules_match_torch_lambda_lr(xb: Backend, name: str) -> None:
    """``lr=schedule`` is the rate ``schedule(t)`` at the (t+1)-th update, as torch's
    LambdaLR stepped after each update gives it (0.01·f(t) there, written so here)."""
    ours, theirs = SCHEDULED[name]
    start = np.array([10.0, -20.0, 5.0])
    steps = _steps(xb, full=False) // 2
    for dtype in _float_dtypes(xb):
        expected = _torch_run(_scheduled(theirs), start, dtype, steps)
        base = BASE_RATE.get(name, 0.01)
        got = _ours(xb, ours(lambda t, b=base: b * _decay(t)), start, dtype, steps)
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=0, err_msg=dtype)


def test_schedules_under_jax_jit_compile_once() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    for name, (ours, theirs) in SCHEDULED.items():
        base = BASE_RATE.get(name, 0.01)
        opt = ours(lambda t, b=base: b * _decay(t))
        traces: list[int] = []

        def update(p: Any, s: Any, o: Any = opt, seen: list[int] = traces) -> Any:
            seen.append(1)
            return o.update(p, _gradient(jnp, p), s)

        step = jax.jit(update)
        params = jnp.array([10.0, -20.0, 5.0])
        state = opt.init(params)
        for _ in range(200):
            params, state = step(params, state)
        assert len(traces) == 1, name

        expected = _torch_run(_scheduled(theirs), np.array([10.0, -20.0, 5.0]), "float64", 200)
        np.testing.assert_allclose(np.asarray(params), expected[-1], rtol=1e-12, err_msg=name)


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
    sgd = ak.optim.gradient_descent(0.5)
    new, _ = sgd.update(params, grads, sgd.init(params))
    np.testing.assert_array_equal(xb.to_numpy(new["w"][0]), [1.5, 3.5])


def test_float32_stays_float32(xb: Backend) -> None:
    if "float32" not in xb.dtypes:
        pytest.skip("no float32")
    params = xb.asarray(np.array([1.0, 2.0]), "float32")
    grads = xb.asarray(np.array([0.1, 0.2]), "float32")
    for opt in (ak.optim.gradient_descent(np.float64(0.1)), ak.optim.adagrad(lr=np.float64(0.1))):
        new, _ = opt.update(params, grads, opt.init(params))
        assert str(new.dtype).endswith("float32")


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (ak.optim.adagrad, {"lr": 0.0}, "lr must be a finite number > 0; got 0.0"),
        (ak.optim.adagrad, {"lr": -1.0}, "lr must be a finite number > 0"),
        (ak.optim.adagrad, {"lr": 1.0, "eps": -1.0}, "eps must be a finite number >= 0"),
        (ak.optim.adagrad, {"lr": 1.0, "lr_decay": NAN}, "lr_decay must be a finite number"),
        (ak.optim.adagrad, {"lr": 1.0, "lr_decay": INF}, "lr_decay must be a finite number"),
        (ak.optim.adagrad, {"weight_decay": INF}, "weight_decay must be a finite number"),
        (ak.optim.adagrad, {"eps": INF}, "eps must be a finite number"),
        (ak.optim.adagrad, {"lr": "1"}, "lr must be a Python number; got str"),
        (ak.optim.gradient_descent, {"lr": INF}, "lr must be a finite number > 0; got inf"),
        (ak.optim.gradient_descent, {"lr": 0.1, "momentum": -0.5}, "momentum must be"),
        (
            ak.optim.gradient_descent,
            {"lr": 0.1, "dampening": 1.5},
            r"dampening must be in \[0, 1\]",
        ),
        (ak.optim.gradient_descent, {"lr": 0.1, "nesterov": True}, "nesterov=True needs momentum"),
        (
            ak.optim.gradient_descent,
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            "dampening = 0",
        ),
        (ak.optim.gradient_descent, {"lr": 0.1, "nesterov": 1}, "nesterov must be True or False"),
        (ak.optim.rmsprop, {"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        (ak.optim.rmsprop, {"eps": INF}, "eps must be a finite number"),
        (ak.optim.rmsprop, {"momentum": NAN}, "momentum must be a finite number"),
        (ak.optim.rmsprop, {"centered": "yes"}, "centered must be True or False"),
        (ak.optim.adam, {"betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\)"),
        (ak.optim.adam, {"betas": (-0.1, 0.9)}, r"betas\[0\] must be a finite number >= 0"),
        (ak.optim.adam, {"betas": 0.9}, "betas must be a pair of numbers"),
        (ak.optim.adam, {"lr": INF}, "lr must be a finite number > 0"),
        (ak.optim.adamw, {"weight_decay": INF}, "weight_decay must be a finite number"),
        (ak.optim.adamw, {"eps": -1e-8}, "eps must be a finite number >= 0"),
        (ak.optim.adamw, {"amsgrad": None}, "amsgrad must be True or False"),
    ],
)
def test_bad_hyperparameters(make: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make(**options)


def test_a_schedule_value_is_checked_as_it_is_used() -> None:
    opt = ak.optim.adam(lr=lambda t: 0.1 if t < 2 else float("inf"))
    params = np.ones(2)
    state = opt.init(params)
    for _ in range(2):
        params, state = opt.update(params, np.ones(2), state)
    with pytest.raises(ValueError, match=r"lr\(2\) must be a finite number >= 0; got inf"):
        opt.update(params, np.ones(2), state)
    # A rate that is an array keeps the parameters' dtype.
    opt = ak.optim.gradient_descent(lambda t: np.float64(0.5) * np.ones(()))
    new, _ = opt.update(np.ones(2, np.float32), np.ones(2, np.float32), opt.init(np.ones(2)))
    assert new.dtype == np.float32
    np.testing.assert_array_equal(new, [0.5, 0.5])


ALL = {
    "gradient_descent": lambda: ak.optim.gradient_descent(0.1, momentum=0.9),
    "adagrad": lambda: ak.optim.adagrad(0.1),
    "rmsprop": lambda: ak.optim.rmsprop(momentum=0.5, centered=True),
    "adam": lambda: ak.optim.adam(amsgrad=True),
    "adamw": lambda: ak.optim.adamw(),
}


@pytest.mark.parametrize("name", ALL)
def test_integer_parameters_are_refused(xb: Backend, name: str) -> None:
    opt = ALL[name]()
    floats = xb.asarray(np.array([1.0, 2.0]), "float64" if "float64" in xb.dtypes else "float32")
    ints = xb.namespace.asarray([1, 2])
    with pytest.raises(TypeError, match=r"params leaf 0 must be a real floating array"):
        opt.init(ints)
    state = opt.init(floats)
    with pytest.raises(TypeError, match=r"params leaf 1 must be a real floating array"):
        opt.update((floats, ints), (floats, ints), opt.init((floats, floats)))
    with pytest.raises(TypeError, match=r"params leaf 0 must be a real floating array"):
        ak.optim.step_in_place(opt, [np.array([1, 2])], state, grads=[np.array([1, 1])])


@pytest.mark.parametrize("name", ALL)
def test_gradients_that_do_not_match_are_named(name: str) -> None:
    opt = ALL[name]()
    params = {"w": np.ones((2, 3)), "b": np.zeros(3)}
    state = opt.init(params)
    bad = [
        (
            {"w": np.ones((2, 3))},
            TypeError,
            r"grads must be a dict with the parameters' keys \['w', 'b'\]; "
            r"got a dict with the keys \['w'\]",
        ),
        ({"w": np.ones((2, 3)), "c": np.zeros(3)}, TypeError, r"grads must be a dict"),
        ([np.ones((2, 3)), np.zeros(3)], TypeError, r"got a list of 2"),
        (
            {"w": np.ones((3, 2)), "b": np.zeros(3)},
            ValueError,
            r"grads\['w'\] must have its parameter's shape \(2, 3\); "
            r"got numpy.ndarray of shape \(3, 2\)",
        ),
        (
            {"w": np.ones((2, 3)), "b": np.zeros(1)},
            ValueError,
            r"grads\['b'\] must have its parameter's shape",
        ),
        (
            {"w": np.ones((2, 3), np.float32), "b": np.zeros(3)},
            TypeError,
            r"grads\['w'\] must have its parameter's dtype float64; got .* float32",
        ),
        (
            {"w": 1.0, "b": np.zeros(3)},
            TypeError,
            r"grads\['w'\] must be an array like its parameter; got builtins.float",
        ),
    ]
    for grads, kind, message in bad:
        with pytest.raises(kind, match=message):
            opt.update(params, grads, state)
    with pytest.raises(ValueError, match=r"state holds step for 2 parameters, not the 1 given"):
        opt.update([np.ones(3)], [np.ones(3)], state)
    with pytest.raises(TypeError, match=r"state must be the .*State this optimizer's init returns"):
        opt.update(params, params, ())
    torch_grads = {"w": torch.ones(2, 3, dtype=torch.float64), "b": np.zeros(3)}
    with pytest.raises(TypeError, match=r"grads\['w'\] must be an array of the parameter's kind"):
        opt.update(params, torch_grads, state)


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
    state = opt.init(model.parameters())
    before = weight.detach().clone()
    # No gradients yet: as torch.optim, nothing to do.
    assert ak.optim.step_in_place(opt, model.parameters(), state) is state
    assert torch.equal(weight.detach(), before)
    model(torch.ones(1, 2)).sum().backward()
    ak.optim.step_in_place(opt, model.parameters(), state)
    assert model.weight is weight
    assert weight.is_leaf
    assert weight.grad_fn is None
    np.testing.assert_allclose(weight.detach(), before - 0.1 * weight.grad)
    # NumPy arrays are written in place too; read-only ones are refused by name.
    p = np.ones(3)
    ak.optim.step_in_place(opt, [p], opt.init([p]), grads=[np.full(3, 2.0)])
    np.testing.assert_allclose(p, 0.8)
    p.flags.writeable = False
    with pytest.raises(TypeError, match=r"params leaf 0 must be a writable array"):
        ak.optim.step_in_place(opt, [p], opt.init([p]), grads=[np.ones(3)])
    with pytest.raises(TypeError, match=r"params leaf 0 has no \.grad attribute: pass grads="):
        ak.optim.step_in_place(opt, [np.ones(3)], opt.init([p]))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_frozen_parameters_are_skipped_as_torch_optim_skips_them(name: str) -> None:
    """A layer frozen for some steps (its ``.grad`` None) keeps its values and its state
    (its own step count: Adam's bias correction resumes where it stopped)."""
    ours, theirs = OPTIMIZERS[name]

    def losses(step: Any) -> list[float]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
        model = model.double()
        x = torch.randn(16, 4, dtype=torch.float64)
        y = torch.randn(16, 1, dtype=torch.float64)
        run = step(model)
        out = []
        for i in range(30):
            model.zero_grad()  # sets every .grad to None
            first = model[0]
            first.requires_grad_(not 10 <= i < 20)  # frozen for ten steps
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            assert (first.weight.grad is None) == (10 <= i < 20)
            run()
            out.append(loss.item())
        return out

    def with_arraykit(model: Any) -> Any:
        opt = ours()
        state = [opt.init(model.parameters())]

        def run() -> None:
            state[0] = ak.optim.step_in_place(opt, model.parameters(), state[0])

        return run

    np.testing.assert_allclose(
        losses(with_arraykit), losses(lambda m: theirs(m.parameters()).step), rtol=1e-12
    )


@pytest.mark.parametrize("name", ALL)
def test_a_step_that_fails_changes_nothing(name: str) -> None:
    opt = ALL[name]()
    model = torch.nn.Linear(3, 2).double()
    model(torch.ones(4, 3, dtype=torch.float64)).sum().backward()
    state = opt.init(model.parameters())
    state = ak.optim.step_in_place(opt, model.parameters(), state)
    before = [p.detach().clone() for p in model.parameters()]
    state_before = [
        leaf.clone() if isinstance(leaf, torch.Tensor) else leaf
        for leaf in ak.optim.tree_leaves(tuple(state))
    ]
    wrong = [p.grad for p in model.parameters()]
    wrong[1] = torch.ones(5, dtype=torch.float64)  # the bias's gradient, of the wrong shape
    with pytest.raises(ValueError, match=r"grads\[1\] must have its parameter's shape \(2,\)"):
        ak.optim.step_in_place(opt, model.parameters(), state, grads=wrong)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), b)
    for leaf, b in zip(ak.optim.tree_leaves(tuple(state)), state_before, strict=True):
        assert torch.equal(leaf, b) if isinstance(b, torch.Tensor) else leaf == b
    # NumPy parameters likewise.
    params = [np.ones(3), np.ones(2)]
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads\[1\] must have its parameter's shape"):
        ak.optim.step_in_place(opt, params, state, grads=[np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(params[0], 1.0)


@pytest.mark.parametrize("name", ALL)
def test_torch_multi_tensor_step_agrees_with_the_formula(name: str) -> None:
    """The multi-tensor step (no autograd) and the per-parameter formula (taken when
    the parameters record autograd history) give the same parameters and state, to the
    few ulps by which a fused multiply-add in the multi-tensor kernels differs."""
    opt = ALL[name]()
    gen = torch.Generator().manual_seed(3)

    def tree() -> Any:
        return {
            "w": torch.randn(4, 3, generator=gen, dtype=torch.float64),
            "b": (torch.randn(3, generator=gen, dtype=torch.float64),),
        }

    params, grads = tree(), [tree() for _ in range(4)]
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
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-14, atol=1e-15)
    pairs = zip(
        ak.optim.tree_leaves(tuple(fast_state)),
        ak.optim.tree_leaves(tuple(formula_state)),
        strict=True,
    )
    for a, b in pairs:
        if isinstance(a, int):
            assert a == b == len(grads)
        else:
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), rtol=1e-14, atol=1e-15
            )


OPTAX = {
    # name: (arraykit's optimizer, optax's) where the two compute the same step
    "sgd": (lambda: ak.optim.gradient_descent(0.01), lambda optax: optax.sgd(0.01)),
    "sgd-momentum": (
        lambda: ak.optim.gradient_descent(0.01, momentum=0.9),
        lambda optax: optax.sgd(0.01, momentum=0.9),
    ),
    "sgd-nesterov": (
        lambda: ak.optim.gradient_descent(0.01, momentum=0.9, nesterov=True),
        lambda optax: optax.sgd(0.01, momentum=0.9, nesterov=True),
    ),
    "adam": (lambda: ak.optim.adam(0.05), lambda optax: optax.adam(0.05)),
    "adamw": (
        lambda: ak.optim.adamw(0.05, weight_decay=0.1),
        lambda optax: optax.adamw(0.05, weight_decay=0.1),
    ),
    "adam-schedule": (
        lambda: ak.optim.adam(lambda t: 0.05 / (1 + 0.01 * t)),
        lambda optax: optax.adam(lambda t: 0.05 / (1 + 0.01 * t)),
    ),
}


@pytest.mark.parametrize("name", OPTAX)
def test_agrees_with_optax_where_the_semantics_coincide(name: str) -> None:
    """Both jitted, over 500 steps in float64: the same iterates to rounding (optax's
    Adam forms the bias-corrected moments first, torch's and this one divide after)."""
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    ours, theirs = OPTAX[name]
    opt, tx = ours(), theirs(optax)
    params = {"a": jnp.array([10.0, -20.0, 5.0]), "b": jnp.array([[1.0, 2.0]])}

    def gradient(p: Any) -> Any:
        return {"a": _gradient(jnp, p["a"]), "b": jnp.sin(p["b"]) + 0.1 * p["b"]}

    @jax.jit
    def ours_step(p: Any, s: Any) -> Any:
        return opt.update(p, gradient(p), s)

    @jax.jit
    def optax_step(p: Any, s: Any) -> Any:
        updates, s = tx.update(gradient(p), s, p)
        return optax.apply_updates(p, updates), s

    p, s, q, r = params, opt.init(params), params, tx.init(params)
    for _ in range(500):
        p, s = ours_step(p, s)
        q, r = optax_step(q, r)
    for key in params:
        np.testing.assert_allclose(np.asarray(p[key]), np.asarray(q[key]), rtol=1e-11, err_msg=key)


@pytest.mark.parametrize("name", ALL)
def test_step_in_place_on_nested_trees_is_the_pure_update(name: str) -> None:
    """Dicts and tuples of torch tensors, and of NumPy arrays: the values update returns,
    written into the arrays themselves."""
    opt = ALL[name]()
    gen = np.random.default_rng(5)
    start = [{"w": gen.normal(size=(3, 2))}, (gen.normal(size=2),)]
    grads = [[{"w": gen.normal(size=(3, 2))}, (gen.normal(size=2),)] for _ in range(3)]
    for put in (torch.tensor, np.array):
        pure = ak.optim.tree_map(put, start)
        in_place = ak.optim.tree_map(put, start)
        state, pure_state = opt.init(in_place), opt.init(pure)
        for g in grads:
            g = ak.optim.tree_map(put, g)
            pure, pure_state = opt.update(pure, g, pure_state)
            state = ak.optim.step_in_place(opt, in_place, state, grads=g)
        for a, b in zip(ak.optim.tree_leaves(in_place), ak.optim.tree_leaves(pure), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-15, atol=1e-15)
