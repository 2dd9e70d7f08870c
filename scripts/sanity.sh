#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/prodgate/deploy: copy the
# checkout (tracked and new files, without the venv and the back-link) into a temporary tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/ansible_collections/prodgate/deploy"
mkdir -p "$dest"
cd "$here"
git ls-files --cached --others --exclude-standard -z \
  | grep -zv '^collections/ansible_collections' \
  | rsync -a --from0 --files-from=- ./ "$dest/"
cd "$dest"
# ansible-test reads the file list from git when a repository is present.
git init -q && git add -A >/dev/null && git -c user.email=ci@prodgate -c user.name=ci commit -qm sanity
"$here/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
