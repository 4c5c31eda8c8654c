"""``python -m backends``: which backends this machine can run, and why not."""

from . import BACKENDS

for backend in BACKENDS.values():
    status = "available" if backend.available else backend.unavailable
    print(f"{backend.id:26} {'gpu' if backend.gpu else 'cpu'}  {status}")
