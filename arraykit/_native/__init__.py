"""Native fast paths: a backend's own kernels, used where they are faster.

Each backend module here defines functions named like the public ones, taking
the generic formula's arguments (less ``xp``): arrays already validated and
cast to their compute dtype. A fast path must give the same results as the
generic formula (:mod:`arraykit._formulas`) within the accuracy contract;
``tests/test_native.py`` checks that on every backend that has one. These
modules import the formulas and helpers, never a public module;
:mod:`arraykit._dispatch` chooses among them.
"""
