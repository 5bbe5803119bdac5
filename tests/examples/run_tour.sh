#!/usr/bin/env bash
# The documentation's commands run:
#   - examples/tour.sh (the README's tour, creating its own data) exits 0, and every command
#     line of the README's tour block appears in it (comments aside), so the two agree;
#   - every `--option` in a synopsis of docs/cli.md (the ``` blocks starting with `nnc SUB`)
#     is listed by `nnc SUB --help`, and every subcommand of `nnc --help` has a section.
set -uo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
if ! PYTHON=/usr/bin/python3 NNC="$NNC" bash "$NNC_SRC/examples/tour.sh" "$tmp/tour" >"$tmp/tour.log" 2>&1; then
  tail -20 "$tmp/tour.log"
  echo "FAIL: examples/tour.sh"
  fail=1
fi
/usr/bin/python3 - "$NNC_SRC" "$NNC" <<'PY' || fail=1
import re, subprocess, sys
src, nnc = sys.argv[1], sys.argv[2]
readme = open(src + "/README.md").read()
tour = open(src + "/examples/tour.sh").read()
block = readme.split("## 30-second tour", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
ok = True
for line in block.strip().splitlines():
    cmd = re.sub(r"\s+#.*$", "", line).strip()
    cmd = cmd.replace("python3 -c", '"${PYTHON:-python3}" -c')
    if cmd not in tour:
        print("FAIL: README command not in examples/tour.sh:", cmd); ok = False
cli = open(src + "/docs/cli.md").read()
subs = set()
for blk in re.findall(r"```\n(nnc [a-z]+ .*?)```", cli, re.S):
    # the synopsis: `nnc SUB ...` lines and their indented continuations
    syn, sub = [], None
    for line in blk.splitlines():
        if line.startswith("nnc "):
            sub = line.split()[1]
        elif not line.startswith(" "):
            sub = None
        if sub:
            syn.append((sub, line))
    for sub in {s for s, _ in syn}:
        subs.add(sub)
        helptext = subprocess.run([nnc, sub, "--help"], capture_output=True, text=True).stdout
        text = " ".join(l for s, l in syn if s == sub)
        for opt in sorted(set(re.findall(r"--[a-z][a-z-]*", text))):
            if opt not in helptext:
                print(f"FAIL: docs/cli.md shows {opt} for 'nnc {sub}', its --help does not"); ok = False
top = subprocess.run([nnc, "--help"], capture_output=True, text=True).stdout
for sub in re.findall(r"^  ([a-z]+) ", top, re.M):
    if f"## nnc {sub}" not in cli:
        print(f"FAIL: docs/cli.md has no section for 'nnc {sub}'"); ok = False
print(f"tour: {len(block.strip().splitlines())} README commands; cli synopses of {sorted(subs)}")
sys.exit(0 if ok else 1)
PY
[ $fail = 0 ] && echo "tour: ok"
exit $fail
