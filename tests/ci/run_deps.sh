#!/usr/bin/env bash
# Every program the test, demo and CI scripts run must come from a package .ci/setup.sh
# installs (or from an Essential or required one, which every Debian root has): a green run on a used
# machine must not hide a dependency a fresh one lacks. Each command word of the scripts that
# resolves to a file on this machine is mapped to its Debian package with dpkg.
set -euo pipefail
: "${NNC_SRC:?}"
command -v dpkg-query >/dev/null || { echo "deps: not a Debian system, skipped"; exit 0; }
cd "$NNC_SRC"
# the packages setup.sh installs: the words of its pkgs=( ... ) list
listed=$(sed -n '/^pkgs=(/,/)/p' .ci/setup.sh | tr -d '()' | sed 's/^pkgs=//' | tr -s ' \n' '\n')
[ -n "$listed" ] || { echo "FAIL: no pkgs=(...) list in .ci/setup.sh" >&2; exit 1; }
# a package counts as provided when setup.sh lists it, it is Essential, or it is something a
# listed package depends on (recursively); apt-cache computes that closure
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances $listed 2>/dev/null | grep -v '^ ' | sort -u)
# what a minimal Debian root (debootstrap --variant=minbase) has: Essential and required
base=$(dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' |
  awk '$2 == "yes" || $3 == "required" {print $1}')
scripts=$(ls .ci/*.sh tests/*/*.sh)
# command words: the first word of a line or after ; | && || $( ` then do, plus /usr/bin paths
words=$(/usr/bin/python3 - $scripts <<'PYEOF'
import re, sys
# command words of shell scripts: the first word of a command (line start, after ; | & ( ` $(
# then do if else !), and absolute /usr/bin paths. Left out: here-documents and multi-line
# quoted strings (other languages' text), comments, and the scripts' own functions.
words, funcs = set(), set()
for path in sys.argv[1:]:
    end, quoted = None, False
    for line in open(path):
        line = line.rstrip("\n")
        if end is not None:
            if line.strip() == end: end = None
            continue
        if quoted:
            if line.count("'") % 2: quoted = False
            continue
        code = re.sub(r"(^|\s)#.*$", "", line)
        h = re.search(r"<<-?\s*['\"]?([A-Za-z_]+)['\"]?", code)
        if h: end = h.group(1)
        if code.count("'") % 2 and not h: quoted = True
        code = re.sub(r"'[^']*'", "''", code)
        f = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\)", code)
        if f: funcs.add(f.group(1))
        for m in re.finditer(r"(?:^|[;|&(`!]|\b(?:then|do|if|else|elif|while|until)\b)\s*([A-Za-z/][A-Za-z0-9_./+-]*)", code):
            words.add(m.group(1))
        words.update(re.findall(r"/usr/bin/[A-Za-z0-9_.+-]+", code))
print(" ".join(sorted(words - funcs)))
PYEOF
)
bad=0
for w in $words; do
  case $w in */*) [ -x "$w" ] || continue; p=$w ;;
    *) [ "$(type -t "$w" 2>/dev/null)" = file ] || continue; p=$(command -v "$w") ;;
  esac
  f=$(readlink -f "$p")
  pkg=""
  # /usr-merged systems: dpkg may know the file under /bin or /usr/bin
  for c in "$f" "$p" "/bin/${f##*/}" "/usr/bin/${f##*/}" "/sbin/${f##*/}"; do
    pkg=$(dpkg -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  [ -n "$pkg" ] || { echo "deps: $w ($f) belongs to no package, skipped"; continue; }
  pkg=${pkg%%,*}
  # (here-strings, not echo | grep -q: grep quitting early would make echo fail under pipefail)
  if grep -qx "$pkg" <<<"$base" || grep -qx "$pkg" <<<"$closure"; then continue; fi
  echo "FAIL: the scripts run '$w' ($f, package $pkg), which .ci/setup.sh does not install" >&2
  bad=1
done
# python modules the scripts import must be in the standard library or numpy
mods=$(grep -ohE '^\s*(import|from) [A-Za-z_][A-Za-z0-9_.]*' tests/*/*.sh tests/*/*.py .ci/*.sh |
  awk '{print $2}' | cut -d. -f1 | sort -u)
for m in $mods; do
  case $m in numpy|ref_nets|st|torch|torchvision) continue ;; esac  # numpy: python3-numpy; ours; torch opt-in
  # a module setup.sh installs from PyPI (the onnx package, for tests/import/)
  grep -qE "pip install .*[ =]$m==" .ci/setup.sh && continue
  /usr/bin/python3 -c "import sys; sys.exit(0 if '$m' in sys.stdlib_module_names else 1)" ||
    { echo "FAIL: the scripts import python module '$m', neither standard nor installed by setup.sh" >&2; bad=1; }
done
[ $bad = 0 ] && echo "deps: $(echo $words | wc -w) command words, $(echo $mods | wc -w) python modules: ok"
exit $bad
