"""The digits experiment: the models against torch's autograd and torch.optim, on every
backend, and the ``arraykit classify`` command as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arraykit as ak
from arraykit import digits
from arraykit.cli import main
from backends import Backend

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

STEPS = 40
# A Dask step builds a few hundred tasks: its columns run with `-m slow`.
SLOW_ON_LAZY = ("test_training_agrees_with_torch_autograd_and_optim",)
TOLERANCE = {"float64": 1e-11, "float32": 2e-4}
HALF_TOLERANCE = 0.1
"""float16 and bfloat16 train another path: their weights hold three digits, so each
Adam step of 1% rounds by a tenth of itself; the costs stay within 10% of float64's."""


def _torch_costs(task: str, data: digits.Digits, steps: int) -> list[float]:
    """The same training in float64 by torch alone: autograd's gradient of torch's own
    loss, torch.optim.Adam's step."""
    x = torch.tensor(np.asarray(data.x_train, dtype=np.float64))
    y = torch.tensor(np.asarray(data.y_train))
    classes = () if task == "logistic" else (10,)
    w = torch.zeros((64, *classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.01)
    costs = []
    for _ in range(steps + 1):
        opt.zero_grad()
        z = x @ w + b
        if task == "logistic":
            cost = torch.nn.functional.binary_cross_entropy_with_logits(z, y.double())
        else:
            cost = torch.nn.functional.cross_entropy(z, y)
        cost.backward()
        costs.append(cost.item())
        opt.step()
    return costs


@pytest.mark.parametrize("task", digits.TASKS)
def test_training_agrees_with_torch_autograd_and_optim(xb: Backend, dtype: str, task: str) -> None:
    if xb.remote:
        pytest.skip("the cluster's graphs are the local Dask column's, at ~0.5 ms a task")
    steps = 10 if xb.lazy else STEPS  # Dask: the same steps as NumPy's, in graphs
    numpy_data = digits.load(task)
    expected = _torch_costs(task, numpy_data, steps)
    labels = dtype if task == "logistic" else None
    data = digits.Digits(
        task,
        xb.asarray(numpy_data.x_train, dtype),
        xb.asarray(numpy_data.y_train, labels),
        xb.asarray(numpy_data.x_test, dtype),
        xb.asarray(numpy_data.y_test, labels),
    )
    run = digits.train(ak.optim.adam(lr=0.01), data, steps=steps, record_every=1)
    got = xb.to_numpy(run.losses).astype(np.float64)
    rtol = TOLERANCE.get(dtype, HALF_TOLERANCE)
    np.testing.assert_allclose(got, expected, rtol=rtol)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        accuracy = float(xb.to_numpy(digits.accuracy(task, run.params, x, y)))
        assert 0.5 < accuracy <= 1.0
    if steps == STEPS:
        assert got[-1] < 0.6 * got[0]  # it learns
        assert accuracy > 0.8


@pytest.mark.parametrize("task", digits.TASKS)
def test_gradient_is_autograds(task: str) -> None:
    data = digits.load(task)
    rng = np.random.default_rng(1)
    shape = (64,) if task == "logistic" else (64, 10)
    params = {"w": rng.normal(size=shape), "b": rng.normal(size=shape[1:])}
    ours = digits.gradient(task, params, data.x_train, data.y_train)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    z = torch.tensor(data.x_train) @ tensors["w"] + tensors["b"]
    y = torch.tensor(data.y_train)
    if task == "logistic":
        torch.nn.functional.binary_cross_entropy_with_logits(z, y).backward()
    else:
        torch.nn.functional.cross_entropy(z, y).backward()
    for k in params:
        np.testing.assert_allclose(ours[k], tensors[k].grad.numpy(), rtol=1e-12, atol=1e-17)
    cost = digits.cost(task, params, data.x_train, data.y_train)
    loss = torch.nn.functional
    theirs = loss.cross_entropy if task == "softmax" else loss.binary_cross_entropy_with_logits
    np.testing.assert_allclose(cost, theirs(z, y).item(), rtol=1e-14)


def test_the_split_and_the_labels() -> None:
    for task in digits.TASKS:
        data = digits.load(task)
        assert data.x_train.shape == (1438, 64)
        assert data.x_test.shape == (359, 64)
        assert data.x_train.min() == 0.0
        assert data.x_train.max() == 1.0
        labels = np.concatenate([data.y_train, data.y_test])
        if task == "logistic":
            assert set(np.unique(labels)) == {0.0, 1.0}
            assert labels.dtype == np.float64
        else:
            assert set(np.unique(labels)) == set(range(10))
    with pytest.raises(ValueError, match="task must be one of"):
        digits.load("multinomial")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        digits.load(test_fraction=1.0)
    with pytest.raises(TypeError, match="dtype must be a real floating dtype"):
        digits.load(dtype=np.int32)


CLI_BACKENDS = ("numpy", "torch", "jax", "array_api_strict", "dask")


def _numbers(text: str) -> list[float]:
    text = re.sub(r"\s+[\d.]+ms", "", text)
    text = re.sub(r"backend \w+", "", text)
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def test_classify_is_the_same_on_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {}
    for backend in CLI_BACKENDS:
        steps = "10" if backend == "dask" else "60"  # a Dask step is a graph of a few hundred tasks
        status = main(["classify", "--backend", backend, "--steps", steps, "--print-every", "5"])
        out, err = capsys.readouterr()
        if status == 2 and "is not installed" in err:
            continue
        assert status == 0, err
        outputs[backend] = out
    reference = outputs.pop("numpy")
    assert reference.count("Cost after iteration 0: 2.302585") == 5  # log 10, from zero weights
    assert "train accuracy:" in reference
    assert "test accuracy:" in reference
    for backend, out in outputs.items():
        if backend == "dask":
            short = main(["classify", "--steps", "10", "--print-every", "5"])
            assert short == 0
            reference_short = capsys.readouterr()[0]
            np.testing.assert_allclose(_numbers(out), _numbers(reference_short), rtol=1e-9)
        else:
            np.testing.assert_allclose(
                _numbers(out), _numbers(reference), rtol=1e-9, err_msg=backend
            )


def test_one_optimizer_prints_the_courses_lines(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["classify", "--model", "logistic", "--optimizer", "adam", "--lr", "0.02",
                   "--steps", "300"])  # fmt: skip
    out, _ = capsys.readouterr()
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "# Adam, lr 0.02"
    costs = [float(line.split(": ")[1]) for line in lines if line.startswith("Cost after")]
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "Cost after iteration 0", "Cost after iteration 100", "Cost after iteration 200",
    ]  # fmt: skip
    assert costs[0] == pytest.approx(np.log(2), rel=1e-6)
    data = digits.load("logistic")
    run = digits.train(ak.optim.adam(0.02), data, steps=300, record_every=100)
    np.testing.assert_allclose(costs, np.asarray(run.losses)[:3], rtol=0, atol=5e-7)
    accuracy = float(digits.accuracy("logistic", run.params, data.x_test, data.y_test))
    assert f"test accuracy: {100 * accuracy:.2f} %" in out
    assert "logistic regression: odd against even digits" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "0.1"], "argument --lr: names the rate of one run; give --optimizer too"),
        (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
        (["--model", "svm"], "argument --model: invalid choice: 'svm'"),
        (["--steps", "0"], "argument --steps: must be a positive number, got 0"),
        (["--plot", "out.txt"], "cannot write .txt files"),
        (["--backend", "numpy", "--device", "cuda"], "backend 'numpy' runs on the CPU only"),
    ],
)
def test_bad_options_give_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str],
    message: str,
) -> None:  # fmt: skip
    def no_computing(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed before the options were checked")

    monkeypatch.setattr(digits, "train", no_computing)
    status = main(["classify", *args])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("arraykit: error: ")
    assert message in err


def test_without_scikit_learn_the_error_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def missing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "sklearn":
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing)
    status = main(["classify"])
    _, err = capsys.readouterr()
    assert status == 2
    assert "scikit-learn, which is not installed; from arraykit's checkout, pip install " in err
    assert "'.[classify]'" in err


def test_plot_compares_the_optimizers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "digits.png"
    assert main(["classify", "--steps", "50", "--plot", str(path)]) == 0
    assert f"figure written to {path}" in capsys.readouterr()[0]
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] > 400
    assert image.shape[1] > 700
