#!/usr/bin/env bash
# run_embed.sh — the embedding workflow as a user sees it: install nnc into a fresh prefix
# (cmake --install), configure and build examples/embed from scratch against that prefix
# only (find_package(nnc) + nnc_add_model compile ../mlp.nn into libmlp.a + mlp.h at build
# time), and run it: the program trains the mlp with mlp_train_step on generated clusters,
# must reach 90% held-out accuracy with a falling loss, and must reproduce its logits
# exactly after a save/load round trip. Editing the .nn file's batch (-D through the
# EMBED_BATCH cache variable) must rebuild the library with the new shapes.
set -u
: "${NNC_BUILD:?set NNC_BUILD to the build directory}" "${NNC_SRC:?set NNC_SRC to the source tree}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

if ! cmake --install "$NNC_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
  cat "$T/install.log" >&2
  echo "FAIL: cmake --install" >&2
  exit 1
fi
for f in bin/nnc include/nnc/rt_model.h; do
  [ -e "$T/prefix/$f" ] || die "install: $f missing"
done
ls "$T"/prefix/lib*/libnnc_runtime.a >/dev/null 2>&1 || die "install: libnnc_runtime.a missing"
ls "$T"/prefix/lib*/cmake/nnc/nncConfig.cmake >/dev/null 2>&1 || die "install: nncConfig.cmake missing"

# only the install prefix: no path into the build tree, and a copy of the example's sources
mkdir -p "$T/src"
cp -r "$NNC_SRC/examples/embed" "$T/src/embed"
cp "$NNC_SRC/examples/mlp.nn" "$T/src/mlp.nn"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if ! cmake -S "$T/src/embed" -B "$T/build" "${GEN[@]}" -DCMAKE_PREFIX_PATH="$T/prefix" \
  >"$T/configure.log" 2>&1; then
  cat "$T/configure.log" >&2
  echo "FAIL: configuring examples/embed against the installed nnc" >&2
  exit 1
fi
if ! cmake --build "$T/build" >"$T/build.log" 2>&1; then
  cat "$T/build.log" >&2
  echo "FAIL: building examples/embed" >&2
  exit 1
fi
grep -q "$NNC_BUILD" "$T/build/CMakeCache.txt" && die "the example's build refers to the nnc build tree"
[ -f "$T/build/nnc_mlp_model/mlp.h" ] || die "nnc_add_model: mlp.h not generated"

"$T/build/embed" --steps 150 --threads 2 --save "$T/w.safetensors" >"$T/run.txt" 2>&1
rc=$?
cat "$T/run.txt"
[ $rc = 0 ] || die "embed exited with $rc"
grep -q '^mlp: batch 32, 407050 parameters' "$T/run.txt" || die "embed: header constants"
/usr/bin/python3 - "$T/run.txt" <<'PYEOF' || die "embed: loss must fall and accuracy reach 0.9"
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"loss (\S+) -> (\S+) after \d+ steps; held-out accuracy (\S+)", t)
ok = m and float(m.group(2)) < 0.5 * float(m.group(1)) and float(m.group(3)) >= 0.9
ok = ok and "reloaded logits identical" in t
sys.exit(0 if ok else 1)
PYEOF
# resume from the saved weights through mlp_load
"$T/build/embed" --steps 10 --weights "$T/w.safetensors" >"$T/run2.txt" 2>&1 ||
  die "embed --weights (resume)"
"$T/build/embed" --weights "$T/missing.safetensors" >"$T/run3.txt" 2>&1 &&
  die "embed with a missing weights file succeeded"
grep -q "missing.safetensors" "$T/run3.txt" || die "embed: error does not name the file"

# a different batch: the library is rebuilt with the new shapes
cmake "$T/build" -DEMBED_BATCH=16 >/dev/null 2>&1 && cmake --build "$T/build" >"$T/build2.log" 2>&1 ||
  { cat "$T/build2.log" >&2; die "rebuild with EMBED_BATCH=16"; }
"$T/build/embed" --steps 200 >"$T/run4.txt" 2>&1 || die "embed (batch 16)"
grep -q '^mlp: batch 16,' "$T/run4.txt" || die "EMBED_BATCH=16 did not reach the header"

[ $fail = 0 ] && echo "run_embed: all checks passed"
exit $fail
