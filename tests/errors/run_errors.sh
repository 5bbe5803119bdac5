#!/usr/bin/env bash
# run_errors.sh — golden diagnostics: runs `$NNC check FILE` on every tests/errors/*.nn and
# compares the diagnostics with the expectations written in the file itself.
#
# Expectation comments (one per line; the message is compared exactly):
#   x = reluu(h)   # error@7: unknown function 'reluu'; did you mean 'relu'?
#                    -> FILE:<this line>:7: error: <message>
#   # error@+1:5: msg   -> the error is on the next line (-K for earlier lines), column 5;
#                          for lines that cannot carry a comment (an unterminated string)
#   # error@0: msg      -> an error without a source position: `nnc: error: msg`
#   # note@COL: msg     -> a note that must appear (other notes are not checked)
#   # args: -D N=0      -> extra arguments for `nnc check`
#   # status: 2         -> the expected exit status (default 1; 2 = a usage error)
# Every expected error and note must appear, no other error may, and the exit status must
# be the expected one.
set -u
NNC=${NNC:?set NNC to the nnc driver}
dir=$(cd "$(dirname "$0")" && pwd)
fail=0
count=0
for path in "$dir"/*.nn; do
  f=$(basename "$path")
  count=$((count + 1))
  args=$(sed -n 's/^# args://p' "$path" | head -n 1)
  want_rc=$(sed -n 's/^# status: *//p' "$path" | head -n 1)
  want_rc=${want_rc:-1}
  expected=$(awk -v F="$f" '
    {
      kind = ""; p = index($0, "# error@");
      if (p) kind = "error"; else { p = index($0, "# note@"); if (p) kind = "note"; }
      if (!p) next;
      rest = substr($0, p + length("# " kind "@"));
      line = NR;
      if (match(rest, /^[+-][0-9]+:/)) {
        line = NR + substr(rest, 1, RLENGTH - 1); rest = substr(rest, RLENGTH + 1);
      }
      if (!match(rest, /^[0-9]+: /)) { print "BAD-EXPECTATION line " NR; next; }
      col = substr(rest, 1, RLENGTH - 2) + 0; msg = substr(rest, RLENGTH + 1);
      if (col == 0) print "nnc: " kind ": " msg;
      else print F ":" line ":" col ": " kind ": " msg;
    }' "$path" | sort)
  # shellcheck disable=SC2086
  out=$(cd "$dir" && "$NNC" check "$f" $args 2>&1)
  rc=$?
  got_errors=$(printf '%s\n' "$out" | grep -E '^([^ ]+:[0-9]+:[0-9]+|nnc|[^ ]+): error: ' | sort)
  want_errors=$(printf '%s\n' "$expected" | grep -E ': error: ' | sort)
  problems=""
  if printf '%s\n' "$expected" | grep -q '^BAD-EXPECTATION'; then
    problems+=$'  malformed expectation comment\n'
  fi
  [ "$rc" -eq "$want_rc" ] || problems+="  exit status $rc, expected $want_rc"$'\n'
  while IFS= read -r e; do
    [ -z "$e" ] && continue
    printf '%s\n' "$out" | grep -qxF -- "$e" || problems+="  missing:    $e"$'\n'
  done <<< "$expected"
  while IFS= read -r g; do
    [ -z "$g" ] && continue
    printf '%s\n' "$want_errors" | grep -qxF -- "$g" || problems+="  unexpected: $g"$'\n'
  done <<< "$got_errors"
  if [ -n "$problems" ]; then
    fail=$((fail + 1))
    printf 'FAIL %s\n%s' "$f" "$problems"
  fi
done
echo "$count files, $fail failed"
[ "$fail" -eq 0 ]
