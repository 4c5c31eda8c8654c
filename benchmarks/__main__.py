"""``python -m benchmarks``: the primitives against their peers (see benchmarks/primitives.py).

``python -m benchmarks.regression`` times the regression experiment.
"""

from .primitives import main

main()
