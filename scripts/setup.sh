#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine (called by `make setup`, `make demo`, `make test`).
# Idempotent and quiet when there is nothing to do; says what it changed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

# --system-only: only the machine's part (Debian packages and the podman settings, steps 1-2), nothing
# in the checkout; tests/integration/test_setup_packages.py runs it on a fresh Debian minbase.
system_only=false
case "${1:-}" in
  "") ;;
  --system-only) system_only=true ;;
  *) echo "setup: unknown option '$1'; usage: scripts/setup.sh [--system-only]"; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: $1 needs root: run 'sudo make setup' once, or install it yourself ($2)"; exit 1; }; }

# 1. Debian packages: the first word of each line of scripts/host-packages.txt (the one list, which
#    also names the commands the project calls from each package) ---------------------------------
mapfile -t apt_packages < <(sed 's/#.*//' scripts/host-packages.txt | awk 'NF { print $1 }')
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "setup: missing Debian packages: ${missing[*]}; this set-up supports Debian 12 (apt-get not found)"; exit 1; }
  need_root "installing ${missing[*]}" "apt-get install -y ${missing[*]}"
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  aptlog=$(mktemp /tmp/prodgate-setup-apt.XXXXXX)
  if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -25 "$aptlog"; echo "setup: apt-get failed; full log in $aptlog"; exit 1
  fi
  rm -f "$aptlog"
fi

# 2. podman settings (platform-notes: runc and ulimits, or containers fail to start) -------------
conf=/etc/containers/containers.conf
changed=$("$PYTHON" - "$conf" <<'PY'
import os, sys, tomllib
path = sys.argv[1]
want = {"containers": {"default_ulimits": '["nofile=1024:1024", "nproc=1024:1024"]'},
        "engine": {"runtime": '"runc"'}}
text = open(path).read() if os.path.exists(path) else ""
have = tomllib.loads(text) if text else {}
changes = []
for section, keys in want.items():
    for key, value in keys.items():
        if key in have.get(section, {}):
            continue
        line = f"{key} = {value}"
        header = f"[{section}]"
        lines = text.splitlines()
        if header in [l.strip() for l in lines]:
            idx = [l.strip() for l in lines].index(header)
            lines.insert(idx + 1, line)
            text = "\n".join(lines) + "\n"
        else:
            text = text + ("" if text.endswith("\n") or not text else "\n") + f"{header}\n{line}\n"
        changes.append(f"{section}.{key}")
if changes:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
print(" ".join(changes))
PY
)
[ -n "$changed" ] && echo "setup: wrote $conf: set $changed"
"$system_only" && exit 0

# 3. Python virtual environment -----------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q -U pip >/dev/null 2>&1 || true
fi
stamp=.venv/.prodgate-deps
digest=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "setup: installing Python dependencies into .venv (pyproject.toml changed or first run)"
  if ! .venv/bin/pip install -q -e '.[test]' >.venv/pip-install.log 2>&1; then
    tail -25 .venv/pip-install.log; echo "setup: pip install failed; full log in .venv/pip-install.log"; exit 1
  fi
  .venv/bin/python -c "import ansible_collections.prodgate.deploy.plugins.plugin_utils.cli, ansible, molecule" || { echo "setup: Python dependencies did not install; see the pip output above"; exit 1; }
  echo "$digest" > "$stamp"
fi

# 4. ansible-test's pip bootstrap stand-in (its download server is unreachable; platform-notes) --
getpip="$HOME/.ansible/test/cache/get_pip_24_2.py"
if [ ! -f "$getpip" ] || ! cmp -s scripts/get_pip_standin.py "$getpip"; then
  mkdir -p "$(dirname "$getpip")"
  cp scripts/get_pip_standin.py "$getpip"
  echo "setup: installed ansible-test pip bootstrap stand-in at $getpip"
fi

# 5. Base image for the lab and molecule --------------------------------------------------------
scripts/build-image.sh
