#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite. The tests use a real PostgreSQL
# server: the one on 127.0.0.1:5432 if it answers, else a throwaway cluster they start from
# the installed binaries, so the server binaries are installed here when missing.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  echo "installing the PostgreSQL server binaries (Debian package postgresql)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql >/dev/null || {
    echo "could not install postgresql; install it or set STEAD_TEST_POSTGRES_URL" >&2; exit 1; }
fi
# The fault matrix (tests/faults/) gives one worker a skewed clock with libfaketime.
if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  echo "installing libfaketime (Debian package faketime) for tests/faults"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  { $SUDO apt-get install -y -qq faketime >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq faketime >/dev/null; }; } || {
    echo "could not install faketime; install it (apt-get install faketime)" >&2; exit 1; }
fi
python -m pip install -q -e '.[test]' || exit 1
python -m pytest -q "$@"
code=$?
if [ "$code" -eq 5 ]; then  # pytest collected no tests: never a silent pass
  echo "pytest collected no tests: the suite is missing or misconfigured" >&2
  exit 1
fi
exit "$code"
