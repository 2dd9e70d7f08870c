#!/usr/bin/env bash
# Build the prodgate execution environment localhost/prodgate-ee:<collection version> with
# ansible-builder v3 (execution-environment.yml) on the lab's base image, once: an image with the
# same recipe label is kept. Usage: scripts/build-ee.sh [--force]. Called by `make ee`.
# Stages .cache/ee/files first: the collection tarball, the prodgate wheel, the collections the
# collection depends on (from the checkout's .venv: Galaxy is not reachable) and the host's CA bundle.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin="$here/.venv/bin"
version=$("$bin/python" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
image=${PRODGATE_EE_IMAGE:-localhost/prodgate-ee:$version}
base=localhost/prodgate-debian:12
podman image exists "$base" || { echo "ee: the base image $base is missing: run make setup first"; exit 1; }

# The recipe: the definition, this script, the collection's version and declared needs, the CLI's
# packaging, and the base image. A changed recipe means a rebuild; a change of the collection's
# code alone does not (tests mount the checkout's collection; --force rebuilds with it).
recipe=$( { cat execution-environment.yml scripts/build-ee.sh awx/ee/controller.yml galaxy.yml pyproject.toml \
              meta/execution-environment.yml requirements.txt bindep.txt;
            podman image inspect --format '{{.Id}}' "$base"; } | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && podman image exists "$image" \
   && [ "$(podman image inspect --format '{{ index .Labels "prodgate.recipe" }}' "$image")" = "$recipe" ]; then
  exit 0
fi

stage=.cache/ee/files
rm -rf .cache/ee
mkdir -p "$stage/collections" "$stage/wheels"
"$bin/ansible-galaxy" collection build --force --output-path "$stage" . >/dev/null
mv "$stage/prodgate-deploy-$version.tar.gz" "$stage/collections/prodgate-deploy.tar.gz"
site=$("$bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections
for dep in $("$bin/python" -c 'import yaml; print(" ".join(yaml.safe_load(open("galaxy.yml"))["dependencies"]))'); do
  ns=${dep%%.*}; name=${dep#*.}
  [ -f "$site/$ns/$name/MANIFEST.json" ] || { echo "ee: collection $dep is not in $site (make setup installs it)"; exit 1; }
  rsync -a --exclude __pycache__ "$site/$ns/$name/" "$stage/collections/$dep/"
done
# pip builds in the tree: setuptools leaves build/ behind, which is not ours to keep.
had_build=$([ -e build ] && echo yes || echo no)
"$bin/pip" wheel -q --no-deps -w "$stage/wheels" . >.cache/ee/wheel.log 2>&1 \
  || { tail -20 .cache/ee/wheel.log; echo "ee: building the prodgate wheel failed, log in .cache/ee/wheel.log"; exit 1; }
[ "$had_build" = yes ] || rm -rf build
cp /etc/ssl/certs/ca-certificates.crt "$stage/ca-bundle.crt"

echo "ee: building $image with ansible-builder (a few minutes, once)"
start=$(date +%s)
"$bin/ansible-builder" build --file execution-environment.yml --context .cache/ee/context \
  --container-runtime podman --tag "$image" -v 2 \
  --extra-build-cli-args "--label prodgate.recipe=$recipe" >.cache/ee/build.log 2>&1 \
  || { tail -40 .cache/ee/build.log; echo "ee: build failed, log in .cache/ee/build.log"; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "ee: built $image in $(( $(date +%s) - start )) s, $(( size / 1000000 )) MB"
