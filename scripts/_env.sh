# Shared by scripts/run.sh and scripts/test.sh: system packages, then the project's virtualenv.
# Sourced, not run. Installs with apt-get only what is missing, and only as root.
# Arguments: Debian packages; "?name" marks one the caller can do without (warned about, not fatal).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${JUKIMON_VENV:-$ROOT/.venv}"

need_apt=()
optional_missing=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
for arg in "$@"; do
  pkg="${arg#\?}"
  if dpkg -s "$pkg" >/dev/null 2>&1; then continue; fi
  need_apt+=("$pkg")
  [ "$arg" != "$pkg" ] && optional_missing+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  elif [ ${#need_apt[@]} -eq ${#optional_missing[@]} ]; then
    echo "note: not installed: ${optional_missing[*]} — the parts that need them stay off" \
         "(sudo apt-get install -y ${optional_missing[*]})" >&2
  else
    echo "missing system packages: ${need_apt[*]} (install them, e.g. sudo apt-get install -y ${need_apt[*]})" >&2
    exit 1
  fi
fi

stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
