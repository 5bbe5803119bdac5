# common.sh — sourced by the tests/cuda checks (`. "$(dirname "$0")/common.sh"`, with the
# check's own arguments): NNC (its first argument), SRC (the source tree), PY, a temporary
# directory T removed at exit, and die.
set -u
NNC=$1
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
