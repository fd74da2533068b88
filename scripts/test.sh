#!/usr/bin/env bash
# Installs safeloss with its test dependencies into a fresh virtualenv,
# builds the documentation site once with `mkdocs build --strict` (every
# warning is an error) and runs the test suite once per Keras backend
# (TensorFlow, JAX, PyTorch). This is the README's test command; .ci/run
# runs it too.
#
# Each backend's run uses two pytest-xdist workers: most tests are
# single-threaded eager Python, and the CI machine has two cores.
# SAFELOSS_TEST_WORKERS overrides the count.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SAFELOSS_VENV:-.venv-test}"
WORKERS="${SAFELOSS_TEST_WORKERS:-2}"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test,jax,torch,docs]" tensorflow-cpu
status=0
echo "=== mkdocs build --strict ==="
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$site" || status=1
rm -rf "$site"
for backend in tensorflow jax torch; do
  echo "=== KERAS_BACKEND=$backend ==="
  start=$SECONDS
  KERAS_BACKEND=$backend "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -n "$WORKERS" --durations=15 || status=1
  echo "=== $backend took $((SECONDS - start)) s ==="
done
exit $status
