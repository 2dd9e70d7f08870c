#!/usr/bin/env bash
# make demo: the main job (issue 8) end to end on the podman lab.
#   lab up -> demo people's keys, a signed lab policy and the controller trust settings
#   -> environment prepared (a gated environment change) -> bundles
#   -> go-live of sampleapp 1.0.0 (trial run, then formal go-live) -> upgrade to 1.1.0 under load
#   -> attempted upgrade to 1.2.0, rolled back automatically -> hygiene audit
#   -> registration form of each change and `prodgate register verify`.
# Everything the demo creates (private keys included) lives in .cache/demo/ (ignored by git) and is
# re-created on every run; change ids carry the run's timestamp, so a second run works. Every
# production change goes through the change window and the approval gate, as in production: the
# playbooks have no switch that turns them off (issue 11).
# Each step's full output is in .cache/demo/logs/; this script prints one line per step.
# DEMO_SKIP_PREPARE=1 skips the environment preparation (when the lab is already prepared).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$repo/collections" ANSIBLE_ROLES_PATH="$repo/roles"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
demo="$repo/.cache/demo"
stamp=$(date -u +%Y%m%d%H%M%S)
total_steps=10
step_no=0
started=$(date +%s)

rm -rf "$demo"
mkdir -p "$demo/logs" "$demo/bundles"
chmod 700 "$demo"

step() { step_no=$((step_no + 1)); printf '== [%d/%d] %s (at %s)\n' "$step_no" "$total_steps" "$*" "$(elapsed)"; }
say() { printf '   %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - started ))s"; }
# run LOGNAME CMD...: the command's output goes to the log; on failure its tail is shown.
run() {
  local log="$demo/logs/$1.log" rc=0; shift
  "$@" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] && return 0
  say "FAILED (exit $rc): $*"; say "last lines of $log:"; tail -n 25 "$log" | sed 's/^/     | /'
  return "$rc"
}
pg() { prodgate "$@"; }

# The change register of the demo (controller.yml names it; the same values here for `prodgate register`).
export_register() {
  export ANSIBLE_CALLBACKS_ENABLED=prodgate.deploy.change_register
  export PRODGATE_REGISTER_DB="$world/register.db"
  export PRODGATE_REGISTER_SIGNING_KEY="$world/keys/register-signing.key"
  export PRODGATE_REGISTER_ANCHOR="$world/anchor-{register_id}.json"
  export PRODGATE_REGISTER_JOURNAL_DIR="$world/journal"
}

# ---------------------------------------------------------------------------------------------
step "lab up (podman containers lb1, app1, app2, db1, db2, backup1)"
run 01-lab-up ansible-playbook playbooks/lab.yml -e lab_state=started

step "demo people's keys, the signed lab policy and the controller trust settings (.cache/demo/world/, never committed)"
# One place creates the approval world for the demo and the lab tests: tests/integration/lab_world.py
# (keys of the demo people and of two governance key holders, the lab policy signed by both, the pinned
# governance root, the register's signing key and controller.yml, which PRODGATE_CONTROLLER_CONFIG names).
world="$demo/world"
aw() { python3 tests/integration/lab_world.py "$@"; }
run 02-world aw init "$world"
export PRODGATE_CONTROLLER_CONFIG="$world/controller.yml"
run 02-policy-check pg policy check "$world/policy.yml" --root "$world/governance-root.yml"
say "policy signed by gov1, gov2 (threshold 2) and pinned by the controller (controller.yml: policy_root)"
say "people: henry (IT head), carol (COO), paul (IT PM), bella (business), rita (risk), pam (president's office),"
say "        ivan and jane (operations; root is ivan's login on this lab controller), sam (supervisor)"
say "freeze windows: trading sessions and year-end close apply to core_business systems, none of the lab's"
say "lead_time_working_days: 0 in this lab policy only (production: 3); no test clock anywhere"

# A change of the demo: its description (what people sign) and run variables (what names it).
# change_file ID TYPE SYSTEM [VERSION]: sampleapp changes bind the bundle digest of VERSION.
change_file() {
  local id=$1 type=$2 system=$3 version=${4:-}
  local args=(change "$world" "$id" --type "$type" --system "$system")
  if [[ -n "$version" ]]; then
    args+=(--version "$version" --artifact "${sha[$version]}" --target app1 --target app2 --target lb1 --target db1
           --var "delivery_bundle=$demo/bundles/sampleapp-$version.tar.gz" --var "delivery_bundle_sha256=${sha[$version]}")
  elif [[ "$system" == sampleapp ]]; then
    args+=(--target app1 --target app2 --target lb1 --target db1)
  fi
  run "change-$id" aw "${args[@]}"
}
# sign ID [lab_world sign options]: every approval the change needs (see SIGNERS there).
sign() { local id=$1; shift; run "approve-$id-$(date +%s%N)" aw sign "$world" "$id" "$@"; }
playbook() {  # playbook LOG PLAYBOOK CHANGE-ID [args]: a gated, registered run (launched by root = ivan)
  local log=$1 book=$2 id=$3; shift 3
  ( export_register; run "$log" ansible-playbook "$book" -e "@$world/changes/$id.vars.yml" --diff "$@" )
}

# ---------------------------------------------------------------------------------------------
PREP="CHG-$stamp-ENV"
step "prepare the environment ($PREP, playbooks/prepare_environment.yml: hardware, host layer, data tier)"
if [[ "${DEMO_SKIP_PREPARE:-0}" == 1 ]]; then
  say "skipped (DEMO_SKIP_PREPARE=1)"
else
  change_file "$PREP" environment online_acceptance
  sign "$PREP"
  say "signed: plan (henry), change approval (henry), implementers (ivan, jane), supervisor (sam)"
  if playbook 03-prepare playbooks/prepare_environment.yml "$PREP"; then
    say "prepared; checklist: $(grep -ho 'reports/[^ ]*' "$demo/logs/03-prepare.log" | head -n 1 || true)"
  else
    say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    say "!! ENVIRONMENT PREPARATION FAILED: see $demo/logs/03-prepare.log"
    say "!! continuing: the delivery needs only PostgreSQL on db1 and nginx on lb1"
    say "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  fi
fi

# ---------------------------------------------------------------------------------------------
step "release bundles 1.0.0, 1.1.0, 1.2.0 (prodgate release build/verify) and the demo reset"
python3 tests/fixtures/sampleapp/build_bundles.py "$demo/bundles" > "$demo/bundles/index.jsonl"
declare -A sha
while read -r line; do
  v=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["version"])' "$line")
  sha[$v]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sha256"])' "$line")
  run "04-verify-$v" pg release verify "$demo/bundles/sampleapp-$v.tar.gz"
  say "sampleapp-$v.tar.gz sha256 ${sha[$v]:0:16}... verified"
done < "$demo/bundles/index.jsonl"
run 04-reset ansible-playbook playbooks/demo.yml --tags demo_reset
say "lab reset: sampleapp removed from app1/app2, its tables dropped on db1 (a fresh first go-live)"

served() { curl -fsS --max-time 3 http://127.0.0.1:18080/version || echo '{"error": "no answer"}'; }

# ---------------------------------------------------------------------------------------------
GL="CHG-$stamp-GL100"
step "go-live of sampleapp 1.0.0 ($GL): trial run, then formal go-live"
change_file "$GL" initial_go_live sampleapp 1.0.0
sign "$GL" --without trial_run --without go_live
say "signed: plan (henry), COO approval (carol), implementers (ivan, jane), supervisor (sam)"
playbook 05-go-live-trial playbooks/go_live.yml "$GL"
say "trial run deployed: $(grep -o 'TRIAL RUN: [^"]*' "$demo/logs/05-go-live-trial.log" | head -n 1)"
say "served: $(served)"
sign "$GL" --stage trial_run --stage go_live
say "signed: trial-run summary (paul, bella), go-live (bella, rita, carol, pam)"
if run 05-evidence pg evidence verify --policy "$world/policy.yml" --policy-root "$world/governance-root.yml" \
     --evidence "$world/evidence/$GL" --change "$world/changes/$GL.yml" \
     --implementer ivan --implementer jane --supervisor sam --launcher root; then
  say "evidence: $(grep -o 'RESULT: .*' "$demo/logs/05-evidence.log" | head -n 1)"
fi
playbook 05-go-live-formal playbooks/go_live.yml "$GL"
say "formal go-live done: $(grep -o 'FORMAL GO-LIVE: [^"]*' "$demo/logs/05-go-live-formal.log" | head -n 1)"
say "served: $(served)"

# ---------------------------------------------------------------------------------------------
# upgrade_change ID VERSION: approvals of an upgrade (public_services/product: COO -> go-live).
upgrade_change() { change_file "$1" version_update sampleapp "$2"; sign "$1"; }
start_load() {  # bounded load on the host, only to the lab's published load balancer
  python3 scripts/loadgen.py --url http://127.0.0.1:18080/version --max-requests 200000 --max-seconds 600 \
    --out "$demo/load-$1.json" >/dev/null 2>"$demo/logs/load-$1.err" &
  load_pid=$!
}
stop_load() { kill -TERM "$load_pid" 2>/dev/null || true; wait "$load_pid" || true; }
load_summary() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%(total)s requests in %(seconds)ss, %(failed)s failed (%(keepalive_retries)s keep-alive retries), versions %(versions)s" % d)' "$demo/load-$1.json"; }

UP1="CHG-$stamp-UP110"
step "rolling upgrade to 1.1.0 ($UP1) while a load generator sends requests without pause"
upgrade_change "$UP1" 1.1.0
start_load up110
up_rc=0
playbook 06-upgrade-110 playbooks/upgrade.yml "$UP1" || up_rc=$?
stop_load
say "load: $(load_summary up110)"
[[ $up_rc -eq 0 ]] || { say "upgrade to 1.1.0 FAILED"; exit 1; }
say "served: $(served)"

UP2="CHG-$stamp-UP120"
step "attempted upgrade to the broken 1.2.0 ($UP2): health check fails -> automatic rollback"
upgrade_change "$UP2" 1.2.0
start_load up120
up_rc=0
( export_register; ansible-playbook playbooks/upgrade.yml -e "@$world/changes/$UP2.vars.yml" --diff \
    >"$demo/logs/07-upgrade-120.log" 2>&1 ) || up_rc=$?
stop_load
say "load: $(load_summary up120)"
if [[ $up_rc -eq 0 ]]; then say "the 1.2.0 upgrade unexpectedly passed"; exit 1; fi
say "as expected, the run stopped (exit $up_rc): $(grep -o 'ROLLED BACK to [^;]*' "$demo/logs/07-upgrade-120.log" | head -n 1)"
for node in app1 app2; do
  say "$node serves: $(podman exec "prodgate-lab-$node" curl -fsS --max-time 3 http://127.0.0.1:8080/version || echo none)"
done
say "through nginx: $(served)"

# ---------------------------------------------------------------------------------------------
step "production hygiene audit after the deployments (Art. 26)"
if run 08-hygiene ansible-playbook playbooks/demo.yml --tags hygiene; then
  say "hygiene audit passed"
else
  say "hygiene audit reported findings: see $demo/logs/08-hygiene.log"
fi

step "change registration forms (Art. 27) and register verification"
export_register
for id in "$GL" "$UP1" "$UP2"; do
  pg register form "$id" > "$demo/form-$id.md"
  echo "--------------------------------------------------------------------- form $id"
  cat "$demo/form-$id.md"
done
echo "--------------------------------------------------------------------- prodgate register verify"
prodgate register verify

step "done in $(elapsed): forms in $demo/form-*.md, logs in $demo/logs/"
pg report build --out "$demo/report" --evidence "$world/evidence" --records "$world/records"  # the operations picture (issue 13): prints its file:// path
