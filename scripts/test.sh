#!/usr/bin/env bash
# Installs safeloss with its test dependencies into a fresh virtualenv and
# runs the test suite once per Keras backend (TensorFlow, JAX, PyTorch).
# This is the README's test command; .ci/run runs it too.
#
# The TensorFlow and JAX runs go side by side: most tests are single-threaded
# eager Python, so two backends use the two cores of the CI machine. Each
# run's output is printed whole when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SAFELOSS_VENV:-.venv-test}"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test,jax,torch]" tensorflow-cpu
LOGS="$(mktemp -d)"

run_backend() {
  local backend=$1 start=$SECONDS status=0
  KERAS_BACKEND=$backend "$VENV/bin/python" -m pytest -q -p no:cacheprovider --durations=15 \
    >"$LOGS/$backend.log" 2>&1 || status=$?
  echo "=== $backend took $((SECONDS - start)) s, exit status $status ===" >>"$LOGS/$backend.log"
  return $status
}

status=0
run_backend tensorflow & tensorflow_job=$!
run_backend jax & jax_job=$!
wait $tensorflow_job || status=1
wait $jax_job || status=1
run_backend torch || status=1
for backend in tensorflow jax torch; do
  echo "=== KERAS_BACKEND=$backend ==="
  cat "$LOGS/$backend.log"
done
exit $status
