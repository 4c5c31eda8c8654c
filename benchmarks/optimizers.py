"""The optimizers side by side with torch.optim (foreach) and optax.

``python -m benchmarks.optimizers [--json FILE]`` times, per optimizer:

* one update of ten float32 parameters of 1e3 and of 1e6 elements each:
  ``step_in_place`` against ``torch.optim``'s ``step()`` with ``foreach=True``
  on torch (one thread and two), the jitted ``update`` against optax's jitted
  ``update`` and ``apply_updates`` on JAX, and ``update`` alone on NumPy;
* the digits experiment (softmax regression, full batch, the same gradient
  function on both sides): ``digits.train`` against the loop a torch user
  writes around ``torch.optim`` and the ``lax.scan`` a JAX user writes around
  optax.

CPU time per call on one thread (wall time on two), the contenders
interleaved (``benchmarks.sweep._time``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import arraykit as ak
from arraykit import digits

from .sweep import _time
from .timing import machine

SIZES = (1_000, 1_000_000)
PARAMETERS = 10
EXPERIMENT_STEPS = 200


def _optimizers() -> dict[str, tuple[Any, Callable[..., Any], Callable[[], Any]]]:
    """name: (arraykit's optimizer, torch.optim's given its parameters, optax's)."""
    import optax
    import torch

    return {
        "momentum": (
            ak.optim.gradient_descent(0.01, momentum=0.9),
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True),
            lambda: optax.sgd(0.01, momentum=0.9),
        ),
        "adagrad": (
            ak.optim.adagrad(0.01),
            lambda p: torch.optim.Adagrad(p, lr=0.01, foreach=True),
            lambda: optax.adagrad(0.01, initial_accumulator_value=0.0, eps=1e-10),
        ),
        "rmsprop": (
            ak.optim.rmsprop(0.01),
            lambda p: torch.optim.RMSprop(p, lr=0.01, foreach=True),
            lambda: optax.rmsprop(0.01, decay=0.99, eps=1e-8),
        ),
        "adam": (
            ak.optim.adam(0.001),
            lambda p: torch.optim.Adam(p, lr=0.001, foreach=True),
            lambda: optax.adam(0.001),
        ),
        "adamw": (
            ak.optim.adamw(0.001),
            lambda p: torch.optim.AdamW(p, lr=0.001, foreach=True),
            lambda: optax.adamw(0.001, weight_decay=0.01),
        ),
    }


def _arrays(size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size, dtype=np.float32) for _ in range(PARAMETERS)]


def torch_update_contenders(name: str, size: int) -> dict[str, Callable[[], Any]]:
    import torch

    ours, theirs, _ = _optimizers()[name]
    contenders = {}
    for who in ("arraykit", "torch.optim"):
        params = [torch.nn.Parameter(torch.from_numpy(a)) for a in _arrays(size, 0)]
        for p, g in zip(params, _arrays(size, 1), strict=True):
            p.grad = torch.from_numpy(g)
        if who == "arraykit":
            state = [ours.init(params)]

            def step(params: Any = params, state: Any = state) -> None:
                state[0] = ak.optim.step_in_place(ours, params, state[0])

            contenders[who] = step
        else:
            contenders[who] = theirs(params).step
    return contenders


def jax_update_contenders(name: str, size: int) -> dict[str, Callable[[], Any]]:
    import jax
    import jax.numpy as jnp
    import optax

    ours, _, theirs = _optimizers()[name]
    params = [jnp.asarray(a) for a in _arrays(size, 0)]
    grads = [jnp.asarray(g) for g in _arrays(size, 1)]
    # Both jitted with the gradients an argument, as a training loop passes them.
    ours_step = jax.jit(ours.update)
    carry = [(params, ours.init(params))]

    def arraykit_step() -> Any:
        carry[0] = ours_step(carry[0][0], grads, carry[0][1])
        return carry[0][0]

    tx = theirs()

    @jax.jit
    def optax_update(p: Any, g: Any, s: Any) -> Any:
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    theirs_carry = [(params, tx.init(params))]

    def optax_step() -> Any:
        theirs_carry[0] = optax_update(theirs_carry[0][0], grads, theirs_carry[0][1])
        return theirs_carry[0][0]

    return {"arraykit": arraykit_step, "optax": optax_step}


def numpy_update_contenders(name: str, size: int) -> dict[str, Callable[[], Any]]:
    ours = _optimizers()[name][0]
    params, grads = _arrays(size, 0), _arrays(size, 1)
    carry = [(params, ours.init(params))]

    def step() -> Any:
        carry[0] = ours.update(carry[0][0], grads, carry[0][1])
        return carry[0][0]

    return {"arraykit": step}


def experiment_contenders(library: str) -> dict[str, Callable[[], Any]]:
    """Adam on the digits' softmax regression, the same gradient on both sides."""
    if library == "torch":
        import torch

        data = digits.load("softmax", xp=torch, dtype=torch.float32)

        def theirs() -> Any:
            params = digits.start(data)
            tensors = [params["w"], params["b"]]
            opt = torch.optim.Adam(tensors, lr=0.01, foreach=True)
            costs = []
            for _ in range(EXPERIMENT_STEPS):
                g = digits.gradient("softmax", params, data.x_train, data.y_train)
                params["w"].grad, params["b"].grad = g["w"], g["b"]
                opt.step()
                costs.append(digits.cost("softmax", params, data.x_train, data.y_train))
            return torch.stack(costs)

        peer = "torch.optim"
    elif library == "jax":
        import jax
        import jax.numpy as jnp
        import optax

        data = digits.load("softmax", xp=jnp, dtype=jnp.float32)
        tx = optax.adam(0.01)

        @jax.jit
        def trained(params: Any) -> Any:
            def step(carry: Any, _: None) -> Any:
                p, s = carry
                g = digits.gradient("softmax", p, data.x_train, data.y_train)
                updates, s = tx.update(g, s, p)
                p = optax.apply_updates(p, updates)
                return (p, s), digits.cost("softmax", p, data.x_train, data.y_train)

            return jax.lax.scan(step, (params, tx.init(params)), None, EXPERIMENT_STEPS)[1]

        def theirs() -> Any:
            return trained(digits.start(data))

        peer = "optax"
    else:
        data = digits.load("softmax", dtype=np.float32)
        theirs, peer = None, ""

    def ours() -> Any:
        return digits.train(
            ak.optim.adam(0.01), data, steps=EXPERIMENT_STEPS, record_every=1
        ).losses

    if library == "jax":
        # A run traces its loop afresh: both compiled once, as a user's jitted function is.
        import jax

        ours = jax.jit(ours)
    return {"arraykit": ours, **({peer: theirs} if theirs else {})}


def _warm(contenders: dict[str, Callable[[], Any]], finish: Callable[[Any], Any]) -> None:
    """Call each for a second: a jitted function's first thousand calls are slower (JAX
    warms its dispatch), which interleaved timing would charge to whichever runs first."""
    import time

    for f in contenders.values():
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            finish(f())


def _finish(library: str) -> Callable[[Any], Any]:
    if library == "jax":
        import jax

        return jax.block_until_ready
    return lambda out: out


def run(repeats: int = 5, budget: float = 0.05) -> list[dict[str, Any]]:
    import torch

    rows = []
    cases: list[tuple[str, str, Any, tuple[int, ...]]] = []
    for name in _optimizers():
        for size in SIZES:
            cases.append(("torch", f"{name} update", (name, size), (1, 2)))
            cases.append(("jax", f"{name} update", (name, size), (1,)))
            cases.append(("numpy", f"{name} update", (name, size), (1,)))
    for library in ("numpy", "torch", "jax"):
        cases.append((library, "digits experiment", None, (1, 2) if library == "torch" else (1,)))
    makers = {
        "torch": torch_update_contenders,
        "jax": jax_update_contenders,
        "numpy": numpy_update_contenders,
    }
    for library, what, args, threads in cases:
        contenders = experiment_contenders(library) if args is None else makers[library](*args)
        if library == "jax":
            _warm(contenders, _finish(library))
        for count in threads:
            torch.set_num_threads(count)
            times = _time(contenders, _finish(library), count > 1, repeats, budget)
            ours = times.pop("arraykit")
            peer, theirs = next(iter(times.items()), ("", None))
            rows.append(
                {
                    "library": library,
                    "case": what,
                    "size": None if args is None else args[1],
                    "threads": count,
                    "arraykit": ours,
                    "peer": peer,
                    "peer_time": theirs,
                    "ratio": None if theirs is None else ours / theirs,
                }
            )
    torch.set_num_threads(1)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | case | elements each | threads | arraykit | peer | peer's | ratio |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        size = "" if r["size"] is None else f"{r['size']:,}"
        theirs = "" if r["peer_time"] is None else _format(r["peer_time"])
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['library']} | {r['case']} | {size} | {r['threads']} | {_format(r['arraykit'])} "
            f"| {r['peer']} | {theirs} | {ratio} |"
        )
    return "\n".join(lines)


def _format(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", False)
    rows = run(args.repeats)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
