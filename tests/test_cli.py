"""The ``arraykit regression`` command, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

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
        (["--steps", "1.5"], "argument --steps: expected an integer, got '1.5'"),
        (["--steps", "100000000000000000000"], "argument --steps: at most 2**53 - 1"),
        (["--steps", "1000000000000"], "history, more than half this machine's"),
        (["--plot", "out.txt"], "cannot write .txt files; use one of"),
        (["--plot", ""], "argument --plot: expected a file name, got ''"),
        (
            ["--plot", "out"],
            "'out' has no extension, so the format is unknown; to write a PNG, say 'out.png'",
        ),
        (["--plot", "/nonexistent/dir/out.png"], "the directory '/nonexistent/dir' does not exist"),
        (["--plot", "."], "argument --plot: '.' is a directory; name a file in it"),
        (["--plot", "/"], "argument --plot: '/' is a directory; name a file in it"),
        (["--plot", __file__ + "/x.png"], f"{__file__!r} is a file, not a directory"),
        (
            ["--plot", __file__ + "/sub/x.png"],
            f"{__file__!r} is a file, not a directory, so '{__file__}/sub' cannot be in it",
        ),
        (
            ["--lr", "1e400"],
            "argument --lr: must be a finite positive number; 1e400 is beyond the largest "
            "float64 (1.798e+308)",
        ),
        (["--lr", "inf"], "must be a finite positive number; inf is beyond the largest"),
        (["--lr", "nan"], "argument --lr: must be a positive number, got nan"),
        (["--gradient", "median"], "argument --gradient: invalid choice: 'median'"),
        (["--plot", "/proc/out.png"], "cannot write '/proc/out.png'"),
    ],
)
def test_bad_options_give_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    if "--plot" in args:
        pytest.importorskip("matplotlib")

    def no_computing(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed before the options were checked")

    monkeypatch.setattr(regression, "fit_line", no_computing)
    monkeypatch.setattr(regression, "classic_data", no_computing)
    status, out, err = _run(capsys, *args)
    assert out == ""
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


def test_version_and_bare_command(capsys: pytest.CaptureFixture[str]) -> None:
    import arraykit

    for flag in ("--version", "-V"):
        with pytest.raises(SystemExit) as done:
            main([flag])
        assert done.value.code == 0
        assert capsys.readouterr().out == f"arraykit {arraykit.__version__}\n"
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: arraykit")
    assert "regression" in out


def test_help_says_every_default_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["regression", "--help"])
    out = capsys.readouterr().out
    assert "``" not in out
    options = re.findall(r"^  (--[a-z-]+)", out, flags=re.MULTILINE)
    assert set(options) >= {"--backend", "--device", "--dtype", "--lr", "--steps", "--plot"}
    helps = re.split(r"^  --", out, flags=re.MULTILINE)[1:]
    for text in helps:
        if not text.startswith("help"):
            assert "default" in " ".join(text.split()), text


def test_ctrl_c_is_one_line_and_status_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    def interrupted(*args: object, progress: Any, **kwargs: object) -> None:
        progress.started -= 5.0  # a long run, its bar on the screen
        progress(30_000, 100_000)
        raise KeyboardInterrupt

    monkeypatch.setattr(regression, "fit_line", interrupted)
    assert main(["regression"]) == 130
    text = terminal.getvalue()
    # The bar's line is cleared, then one line says what happened.
    assert text.endswith("\r" + " " * 79 + "\rarraykit: interrupted\n")
    assert "Traceback" not in text


def _drawn(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: figures.append(self))
    status, _out, err = _run(capsys, *args, "--plot", "out.png")
    assert status == 0, err
    (figure,) = figures
    return figure


def test_figure_says_what_was_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no layout warning either
        figure = _drawn(monkeypatch, capsys, "--steps", "10")
    ax = figure.axes[0]
    assert figure.get_suptitle() == (
        "y = b + w·x on the classic data: 10 steps from (b, w) = (-120, -4)"
    )
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # Slowest first (the widest band, underneath), then the start and the optimum.
    assert [label.split(":")[0] for label in labels[:4]] == [
        "gradient descent, lr 1e-07",
        "gradient descent, lr 1e-06",
        "gradient descent, lr 1e-05",
        "Adagrad, lr 1",
    ]
    assert labels[4:] == ["start (-120, -4)", "least-squares optimum (-188.4, 2.67)"]
    # Beside the surface, w and b step by step: one line per run in each panel.
    for panel in figure.axes[1:3]:
        assert panel.get_xscale() == "log"
        assert len([line for line in panel.lines if len(line.get_xdata()) > 2]) == 4
    # The tutorial's colours: matplotlib's first four, in the runs' order.
    from matplotlib.colors import to_hex

    colours = {line.get_label().split(":")[0]: to_hex(line.get_color()) for line in ax.lines}
    assert colours["gradient descent, lr 1e-07"] == to_hex("C0")
    assert colours["gradient descent, lr 1e-06"] == to_hex("C1")
    assert colours["gradient descent, lr 1e-05"] == to_hex("C2")
    assert colours["Adagrad, lr 1"] == to_hex("C3")


def test_figure_labels_a_diverged_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    figure = _drawn(monkeypatch, capsys, "--optimizer", "gd", "--lr", "1e-4", "--steps", "5000")
    (label, _start, _optimum) = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert re.fullmatch(r"gradient descent, lr 0\.0001: diverged at step [\d,]+", label), label


def _command(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """The installed command, as a shell starts it: its script imports
    arraykit.__main__ and calls main. Here it first writes "started" to
    standard error, so that a test knows when the command's own lines begin."""
    script = (
        "import os, sys; os.write(2, b'started\\n'); from arraykit.__main__ import main; "
        "sys.argv[0] = 'arraykit'; sys.exit(main())"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], text=True, stderr=subprocess.PIPE, **kwargs
    )
    assert child.stderr is not None
    assert child.stderr.readline() == "started\n"
    return child


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    # `arraykit regression --print-every 1 | head -2`: the reader leaves after two lines.
    child = _command("regression", "--print-every", "1", stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stderr is not None
    lines = [child.stdout.readline() for _ in range(2)]
    child.stdout.close()
    status = child.wait(timeout=120)
    with child.stderr:
        err = child.stderr.read()
    assert lines[1].startswith("Step 0, w: ")
    assert err == ""
    assert status == 141  # 128 + SIGPIPE, as a process that SIGPIPE ended reports


def test_ctrl_c_during_the_imports_is_one_line_and_status_130() -> None:
    import signal
    import time

    # From the command's first lines through its imports to its computation.
    # (Python's own start, and the line of the installed script that imports
    # arraykit.__main__, a millisecond or three, come before: a key pressed
    # there is Python's.)
    for delay in (0.01, 0.02, 0.04, 0.08, 0.15, 0.3):
        child = _command("regression", "--steps", "100000", stdout=subprocess.PIPE)
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
        assert "Traceback" not in err, (delay, err)
        if "Adagrad, lr 1 " in out:
            # Done before the key, or the key came while Python was closing down
            # after the command's end (it then dies by SIGINT, as a shell's 130).
            assert (child.returncode, err) in (
                (0, ""),
                (-signal.SIGINT, ""),
                (130, "arraykit: interrupted\n"),  # after the last line, before its end
            ), (delay, child.returncode, err)
            break  # the rest of the delays are later still
        assert child.returncode == 130, (delay, child.returncode, err)
        assert err == "arraykit: interrupted\n", (delay, err)


def test_huge_numbers_keep_the_table_readable(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(capsys, "--optimizer", "adagrad", "--lr", "1e300", "--steps", "50")
    assert status == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("Adagrad")]
    assert len(row) < 100
    assert re.search(r"\b1\.000e\+300\b", row)


def test_a_diverged_row_says_at_which_step(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(capsys, "--optimizer", "gd", "--lr", "1e-4", "--steps", "5000")
    assert status == 0, err
    steps = regression.fit_line(X, Y, lr=1e-4, steps=5000, start=regression.CLASSIC_START).steps
    assert f"(diverged at step {steps:,})" in out


def test_the_notebook_convention_sums_the_gradient(capsys: pytest.CaptureFixture[str]) -> None:
    # The classic notebook sums the gradient over the ten points: its lr
    # 1e-7 steps as lr 1e-6 does on the mean, and its 1e-5 diverges.
    def rows(*args: str) -> list[list[str]]:
        status, out, err = _run(capsys, "--steps", "20000", *args)
        assert status == 0, err
        return [
            re.sub(r"\s+[\d.]+ms", "", line).split("  ")
            for line in out.splitlines()
            if line.startswith(("gradient", "Adagrad"))
        ]

    summed = rows("--gradient", "sum")
    for lr, row in zip(("1e-07", "1e-06"), summed, strict=False):
        mean = rows("--optimizer", "gd", "--lr", str(float(lr) * 10))[0]
        assert row[1:] == mean[1:], (lr, row, mean)
    assert "diverged" in " ".join(summed[2])
    adagrad = rows("--optimizer", "adagrad")[0]
    assert summed[3][1:3] == adagrad[1:3]  # Adagrad divides the factor out


@pytest.mark.parametrize(
    ("backend", "hint"), [("cupy", "pip install '.[cupy]'"), ("jax", "'.[jax]'")]
)
def test_install_hints_work_without_a_release(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str, hint: str
) -> None:
    import builtins

    real_import = builtins.__import__

    def missing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == backend:
            raise ImportError(f"No module named {backend!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing)
    status, _out, err = _run(capsys, "--backend", backend)
    assert status == 2
    assert "from arraykit's checkout" in err
    assert hint in err
    assert "arraykit-classics[" not in err
    from arraykit import cli

    assert "--index-url https://download.pytorch.org/whl/cpu" in cli.install_hint("torch")


def test_an_interrupt_wrapped_by_python_is_still_ctrl_c(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.11 wraps a KeyboardInterrupt raised in __set_name__ (a class
    # body being imported) in a RuntimeError: still Ctrl-C, one line and 130.
    def importing(*args: object, **kwargs: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise RuntimeError("Error calling __set_name__") from interrupt

    monkeypatch.setattr(regression, "fit_line", importing)
    assert main(["regression"]) == 130
    assert capsys.readouterr().err == "arraykit: interrupted\n"
    monkeypatch.setattr(regression, "fit_line", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["regression"])


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by this Python in a process of its own, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_an_interrupt_python_would_swallow_ends_the_command() -> None:
    # A KeyboardInterrupt in a weakref callback or __del__ (importlib's module
    # locks, during an import) is "Exception ignored" to Python; the command's
    # entry ends there, as Ctrl-C anywhere else ends it.
    code = (
        "import sys\n"
        "from arraykit.__main__ import end_on_swallowed_ctrl_c\n"
        "sys.unraisablehook = end_on_swallowed_ctrl_c\n"
        "class Interrupted:\n"
        "    def __del__(self):\n"
        "        raise KeyboardInterrupt\n"
        "print('before', flush=True)\n"
        "Interrupted()\n"
        "print('after')\n"
    )
    done = _python(code)
    assert (done.returncode, done.stdout, done.stderr) == (
        130,
        "before\n",
        "arraykit: interrupted\n",
    )
    other = code.replace("raise KeyboardInterrupt", "raise ValueError('kept')")
    done = _python(other)
    assert done.returncode == 0
    assert done.stdout == "before\nafter\n"
    assert "ValueError: kept" in done.stderr  # Python's own hook, as before


def test_an_interrupt_that_an_import_turned_into_another_error_ends_the_command() -> None:
    # Ctrl-C that lands in NumPy's C import of datetime comes out as NumPy's
    # ImportError, with no chain back to the interrupt: once the entry watches
    # for Ctrl-C, whatever follows it is the interrupt's doing.
    code = (
        "import os, signal, sys, time\n"
        "import arraykit.__main__ as entry\n"
        "def command():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(2)\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n"
        "    raise ImportError('Importing the numpy C-extensions failed')\n"
        "import arraykit.cli\n"
        "arraykit.cli.main = command\n"
        "sys.exit(entry.main())\n"
    )
    done = _python(code)
    assert (done.returncode, done.stderr) == (130, "arraykit: interrupted\n")
    # Without Ctrl-C, the same error is the command's to report.
    calm = code.replace("os.kill(os.getpid(), signal.SIGINT)", "pass").replace("2)", "0)")
    done = _python(calm)
    assert done.returncode == 1
    assert "ImportError: Importing the numpy C-extensions failed" in done.stderr
