"""The ``arraykit regression`` command, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backends
from arraykit import regression
from arraykit.cli import main

from .test_regression import _classic_loop, _exact_loss

X, Y = np.array(regression.CLASSIC_X), np.array(regression.CLASSIC_Y)
CLI_BACKENDS = {"numpy": "numpy", "torch": "torch:cpu", "jax": "jax:cpu", "dask": "dask"}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["regression", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _without_times(text: str) -> str:
    return re.sub(r"\s+[\d.]+ms", "", text).replace("backend numpy", "backend X")


def _require(backend_id: str) -> None:
    backend = backends.get(backend_id)
    if not backend.available:
        pytest.skip(backend.unavailable)


def test_classic_comparison_is_the_same_on_every_backend(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {}
    for name, backend_id in CLI_BACKENDS.items():
        _require(backend_id)
        status, out, err = _run(capsys, "--backend", name)
        assert status == 0, err
        outputs[name] = re.sub(r"backend \w+", "backend X", _without_times(out))
    first = outputs["numpy"]
    for name, text in outputs.items():
        assert text == first, name
    rows = [line for line in first.splitlines() if line.startswith(("gradient", "Adagrad"))]
    assert len(rows) == 4
    assert rows[0].split()[4:6] == ["-120.3619", "2.4738"]  # lr 1e-7 barely moves from (-120, -4)
    assert "-188.3668" in rows[-1]  # Adagrad: at the optimum, -188.4332, to 0.07


def test_print_every_matches_the_classic_loop(capsys: pytest.CaptureFixture[str]) -> None:
    stepped = _classic_loop(1e-6, 2500)
    expected = [
        "Step %i, w: %0.4f, b: %.4f, Loss: %.4f"  # noqa: UP031
        % (i, stepped[i + 1][1], stepped[i + 1][0], _exact_loss(X, Y, *stepped[i]))
        for i in range(0, 2500, 500)
    ]
    for name, backend_id in CLI_BACKENDS.items():
        _require(backend_id)
        status, out, err = _run(
            capsys,
            "--backend",
            name,
            "--optimizer",
            "gd",
            "--lr",
            "1e-6",
            "--steps",
            "2500",
            "--print-every",
            "500",
        )
        assert status == 0, err
        assert [line for line in out.splitlines() if line.startswith("Step ")] == expected, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "nope"], "argument --backend: invalid choice: 'nope'"),
        (["--lr", "-1"], "argument --lr: must be a positive number, got -1"),
        (["--steps", "0"], "argument --steps: must be a positive number, got 0"),
        (["--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
        (["--backend", "numpy", "--device", "cuda"], "backend 'numpy' runs on the CPU only"),
    ],
)
def test_bad_options_give_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, _out, err = _run(capsys, *args)
    assert status == 2
    assert err.count("\n") == 1
    assert err.startswith("arraykit: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", ["torch", "jax", "cupy"], ids=lambda b: f"--backend={b}")
def test_cuda_without_a_gpu_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    gpu = {"torch": "torch:cuda", "jax": "jax:cuda", "cupy": "cupy"}[backend]
    if backends.get(gpu).available:
        pytest.skip("a GPU is here")
    status, _out, err = _run(capsys, "--backend", backend, "--device", "cuda")
    assert status == 2
    assert err.count("\n") == 1
    assert re.search(r"needs a CUDA GPU|is not installed", err)


def test_plot_writes_the_figure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "classic.png"
    status, _out, err = _run(capsys, "--steps", "20000", "--plot", str(target))
    assert status == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 20_000


def test_module_entry_point() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arraykit",
            "regression",
            "--optimizer",
            "adagrad",
            "--steps",
            "1000",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Adagrad, lr 1" in done.stdout
    assert "closed-form optimum: b* = -188.4332, w* = 2.6695" in done.stdout


def test_progress_bar_only_on_a_terminal_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from arraykit import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, elapsed, shown in (
        (Terminal(), 2.0, True),
        (Terminal(), 0.1, False),
        (io.StringIO(), 2.0, False),
    ):
        monkeypatch.setattr(sys, "stderr", stream)
        bar = cli.ProgressBar("adagrad lr 1")
        bar.started -= elapsed
        bar(50_000, 100_000)
        bar.close()
        assert ("[###############..............." in stream.getvalue()) == shown
