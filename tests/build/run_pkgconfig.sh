#!/usr/bin/env bash
# pkg-config: after `cmake --install` into a fresh prefix, `pkg-config --cflags --libs
# nnc-runtime` (found through PKG_CONFIG_PATH alone) is enough to compile and link
# examples/embed/main.c against a library from `nnc build --lib`; the program trains the mlp
# briefly and exits 0.
set -u
: "${NNC_BUILD:?}" "${NNC_SRC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
cmake --install "$NNC_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; die "cmake --install"; }
pcdir=$(dirname "$(ls "$T"/prefix/lib*/pkgconfig/nnc-runtime.pc "$T"/prefix/lib/*/pkgconfig/nnc-runtime.pc 2>/dev/null | head -1)")
[ -f "$pcdir/nnc-runtime.pc" ] || die "nnc-runtime.pc not installed"
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs nnc-runtime) || die "pkg-config nnc-runtime"
echo "pkg-config: $flags"
case "$flags" in *"$T/prefix"*|*"$pcdir"*) ;; *) die "flags do not point into the prefix: $flags" ;; esac
[ -f "$(pkg-config --variable=includedir nnc-runtime)/nnc/rt_model.h" ] || die "includedir"
"$T/prefix/bin/nnc" build "$NNC_SRC/examples/mlp.nn" --lib -o "$T/libmlp.a" >/dev/null || die "nnc build --lib"
san=""
grep -q '^NNC_SANITIZE:BOOL=ON' "$NNC_BUILD/CMakeCache.txt" 2>/dev/null && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086
cc -o "$T/embed" "$NNC_SRC/examples/embed/main.c" -I"$T" "$T/libmlp.a" $flags $san \
  || die "compiling examples/embed with the pkg-config flags"
"$T/embed" --steps 20 --threads 1 >"$T/run.txt" 2>&1 || { cat "$T/run.txt"; die "the program failed"; }
echo "pkg-config: ok"
