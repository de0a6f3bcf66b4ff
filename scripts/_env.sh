# Shared set-up for scripts/demo and scripts/test: a virtual environment in .venv with
# webxdc-rt installed (editable) plus the extras named in $WEBXDC_RT_EXTRAS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WEBXDC_RT_VENV:-$ROOT/.venv}"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "webxdc-rt needs Python 3.11 or newer" >&2
  return 1
}

# Installs webxdc-rt (editable) with the extras named in $1 only when .venv lacks it or
# pyproject.toml or the extras changed since the last install (a stamp in .venv says which),
# so later runs start at once and need no package index.
ensure_venv() {
  local extras="${1:-}" spec="$ROOT" stamp wanted
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  stamp="$VENV/.webxdc-rt-installed"
  wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) extras=$extras"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec"
    echo "$wanted" > "$stamp"
  fi
}

# Says how to run the command once the venv is set up.
how_to_run() {
  echo "webxdc-rt is installed in $VENV: run $VENV/bin/webxdc-rt," \
       "or 'source $VENV/bin/activate' and then webxdc-rt" >&2
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian's chromium (never a downloaded browser), installed when missing.
ensure_chromium() {
  local chromium="${WEBXDC_RT_CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$chromium" ]; then
    echo "installing Debian's chromium" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
}
