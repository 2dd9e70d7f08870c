#!/usr/bin/env bash
# Worked example of docs/approvals.md: keys -> signed policy -> approvals -> evidence verify.
# Usage: docs/examples/approvals/make_example.sh [OUT_DIR]   (default .cache/approvals-example)
# Private keys are generated here, at run time, and never committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${1:-$repo/.cache/approvals-example}
pg=${PRODGATE:-$repo/.venv/bin/prodgate}
rm -rf "$out"; mkdir -p "$out/keys" "$out/evidence"
cp "$here/policy.template.yml" "$out/policy.yml"
for who in gov1 gov2 gov3 henry carol bella rita pam ivan jane sam; do
  pub=$("$pg" keys generate --out "$out/keys/$who.key" --person "$who" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
  sed -i "s/@KEY:$who@/$pub/" "$out/policy.yml"
done
sed -i "s/@EXPIRES@/$(date -d '+180 days' +%Y-%m-%dT00:00:00+08:00)/" "$out/policy.yml"
# ivan launches the run: map the login running this script to him (the launcher is the real user).
sed -i "s/@LAUNCHER@/$(id -un)/" "$out/policy.yml"
"$pg" policy sign "$out/policy.yml" --key "$out/keys/gov1.key"
"$pg" policy sign "$out/policy.yml" --key "$out/keys/gov2.key"
"$pg" policy check "$out/policy.yml"
printf 'release 1.4.0\n' > "$out/ops-wiki-1.4.0.tar.gz"
cat > "$out/change.yml" <<YAML
change_id: CHG-2001
system: ops-wiki
environment: production
change_type: version_update
version: "1.4.0"
artifacts: [$out/ops-wiki-1.4.0.tar.gz]
targets: [localhost]
YAML
sign() { "$pg" approve --key "$out/keys/$3.key" --person "$3" --role "$2" --stage "$1" --change "$out/change.yml" \
           --policy "$out/policy.yml" --out "$out/evidence/" "${@:4}"; }
sign plan_submission it_head henry --planned-start "$(date -d '+5 days' +%Y-%m-%dT20:00:00+08:00)"
sign coo_approval coo carol
sign go_live business_owner bella
sign go_live risk_compliance rita
sign go_live coo carol
sign go_live president_office pam
sign implementer_ack it_ops ivan
sign implementer_ack it_ops jane
sign supervisor_ack ops_supervisor sam
"$pg" evidence verify --policy "$out/policy.yml" --evidence "$out/evidence" --change "$out/change.yml" --launcher ivan
# The controller's trust settings (docs/approvals.md#controller-trust-settings): the pinned governance
# root, the policy and the change register that keeps the consumed approvals. On a real controller
# this is /etc/prodgate/controller.yml, written by its administrator.
python3 - "$out" <<'PY'
import sys, yaml
out = sys.argv[1]
policy = yaml.safe_load(open(f"{out}/policy.yml"))
yaml.safe_dump({"governance": policy["governance"]}, open(f"{out}/governance-root.yml", "w"))
yaml.safe_dump({"policy": f"{out}/policy.yml", "policy_root": f"{out}/governance-root.yml",
                "register": {"db": f"{out}/register.db", "signing_key": f"{out}/register-signing.key",
                             "anchor": f"{out}/anchor-{{register_id}}.json", "journal_dir": f"{out}/journal"}},
               open(f"{out}/controller.yml", "w"))
PY
chmod go-w "$out" "$out/controller.yml"
# The gate itself, launched by the user running this script (ivan's login in the policy).
PRODGATE_CONTROLLER_CONFIG="$out/controller.yml" PRODGATE_EXAMPLE_DIR="$out" ANSIBLE_COLLECTIONS_PATH="$repo/collections" \
  ANSIBLE_CONFIG="$repo/ansible.cfg" "$repo/.venv/bin/ansible-playbook" -i localhost, "$here/gate.yml"
