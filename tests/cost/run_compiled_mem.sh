#!/usr/bin/env bash
# nnc cost reports the memory a built program really allocates: its "compiled" figures equal
# the macros of the header `nnc build --lib` writes (regions and the training step's arena).
set -euo pipefail
: "${NNC:?}" "${NNC_SRC:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ex in mlp lenet; do
  "$NNC" build "$NNC_SRC/examples/$ex.nn" --lib -o "$tmp/lib$ex.a"
  "$NNC" cost "$NNC_SRC/examples/$ex.nn" --train --json > "$tmp/$ex.json"
  up=$(echo "$ex" | tr a-z A-Z)
  /usr/bin/python3 - "$tmp/$ex.json" "$tmp/$ex.h" "$up" <<'PY'
import json, re, sys
c = json.load(open(sys.argv[1]))["memory"]["compiled"]
h = dict(re.findall(r"#define (\w+) (\d+)", open(sys.argv[2]).read()))
p = sys.argv[3]
want = {"params_region": int(h[p + "_PARAMS_BYTES"]), "io_region": int(h[p + "_IO_BYTES"]),
        "arena": int(h[p + "_ARENA_BYTES_TRAIN"])}
got = {k: int(v) for k, v in c.items()}
print(p, "cost:", got, "header:", want)
sys.exit(0 if got == want else 1)
PY
done
echo "compiled memory: ok"
