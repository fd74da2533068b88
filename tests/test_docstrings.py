"""The `>>>` examples in the public docstrings run, as doctests.

Every class and function of `safeloss.__all__`, `safeloss.ops.__all__` and
`safeloss.layers.__all__` must have an example. Examples print plain floats
or NumPy arrays, never tensors, whose reprs differ between backends.

The issue asks for them on TensorFlow; they run on PyTorch too. On JAX only
the `safeloss.ops` ones are collected: eager JAX compiles every op for each
new shape, and the other examples together took over a minute there (they
passed when run by hand).
"""

import doctest
import inspect

import keras
import pytest

import safeloss
from safeloss import layers, ops


def public_objects(module):
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value


OBJECTS = {}
for module in (safeloss, ops, layers):
    OBJECTS.update(public_objects(module))

FINDER = doctest.DocTestFinder(recurse=False, exclude_empty=True)
RUN_HERE = sorted(
    path
    for path in OBJECTS
    if keras.backend.backend() != "jax" or path.startswith("safeloss.ops.")
)


def examples_of(path):
    return [
        test
        for test in FINDER.find(OBJECTS[path], path, globs={})
        if test.examples
    ]


@pytest.mark.parametrize("path", sorted(OBJECTS))
def test_public_object_has_example(path):
    assert examples_of(path), f"{path} has no `>>>` example in its docstring"


@pytest.mark.parametrize("path", RUN_HERE)
def test_example_runs(path):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in examples_of(path):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} failed"
