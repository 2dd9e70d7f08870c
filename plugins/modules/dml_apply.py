#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: dml_apply
short_description: Apply a release's schema migrations and DML-only data scripts to PostgreSQL, once each (Art. 10(3))
version_added: "0.1.0"
description:
  - Applies the schema migrations and the data-initialisation scripts listed in an approved release
    manifest (see C(prodgate release build)) to a PostgreSQL database, migrations first.
  - "Art. 10(3) of the change policy: initial data is never loaded by importing database files, only with
    data manipulation statements. A data script may therefore hold only C(INSERT), C(UPDATE), C(DELETE),
    C(MERGE), C(SELECT), C(WITH) and C(VALUES) statements. In every script, C(COPY), psql meta-commands
    such as C(\\copy) and C(\\i), large-object functions (C(lo_import) and the like) and server
    file functions (C(pg_read_file), C(pg_read_binary_file), C(pg_ls_dir), ...) are refused; so are
    transaction control, C(DO) and C(CALL). The refusal names the script, line and statement."
  - Every script's sha256 must equal its digest in the approved manifest.
  - A ledger table records each applied script with its digest, category, system, version, change id,
    who applied it and when. A script in the ledger is not applied again; a script in the ledger whose
    digest changed is an error (ship corrections as new scripts).
  - Each script runs in its own transaction together with its ledger row; concurrent runs (several
    hosts) are serialised with an advisory lock on the ledger.
  - The whole plan (digests, ledger, classification) is checked before the first script runs.
author:
  - prodgate maintainers (@prodgate)
requirements:
  - psycopg2 on the target (Debian package C(python3-psycopg2)); psycopg 3 is used when psycopg2 is absent.
attributes:
  check_mode:
    support: full
    description: Connects and reads the ledger (without creating it), checks every digest and statement, and
      returns in RV(would_apply) what a real run would apply. Nothing is written.
  diff_mode:
    support: none
    description: The module reports the scripts it applies in RV(applied), not a diff.
options:
  manifest:
    description:
      - The approved release manifest (the C(manifest.yml) of a verified bundle, as a mapping).
      - Only its C(system), C(version), C(migrations) and C(data_scripts) entries are used.
    type: dict
    required: true
  release_dir:
    description: Directory on the target holding the scripts at the paths the manifest gives (an unpacked bundle).
    type: path
    required: true
  categories:
    description: Which categories to apply. Migrations always run before data scripts.
    type: list
    elements: str
    choices: [migrations, data_scripts]
    default: [migrations, data_scripts]
  change_id:
    description: Id of the approved change this application belongs to (recorded in the ledger).
    type: str
    required: true
  applied_by:
    description: Who applies the scripts (the implementer of the change, Art. 27), recorded in the ledger.
    type: str
    required: true
  ledger_table:
    description: The ledger table, C(table) or C(schema.table). Created on the first real run.
    type: str
    default: prodgate_dml_ledger
  db_host:
    description: Database host or Unix socket directory; empty for the default socket.
    type: str
    default: ""
  db_port:
    description: Database port.
    type: int
    default: 5432
  db_name:
    description: Database name.
    type: str
    required: true
  db_user:
    description: Database role; empty for the connecting OS user.
    type: str
    default: ""
  db_password:
    description: Password of O(db_user).
    type: str
    default: ""
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
notes:
  - Run it once per database (for example on the database primary, or with C(run_once)); the ledger
    makes repeated and concurrent runs safe.
seealso:
  - module: community.postgresql.postgresql_script
"""

EXAMPLES = r"""
- name: Read the approved manifest of the unpacked release
  ansible.builtin.slurp:
    src: /opt/sampleapp/releases/1.1.0/manifest.yml
  register: __manifest

- name: Apply migrations and data scripts of 1.1.0
  prodgate.deploy.dml_apply:
    manifest: "{{ __manifest.content | b64decode | from_yaml }}"
    release_dir: /opt/sampleapp/releases/1.1.0
    change_id: CHG-2026-0042
    applied_by: alice
    db_name: sampleapp
  become: true
  become_user: postgres
"""

RETURN = r"""
applied:
  description: Scripts applied by this run, in order.
  returned: always
  type: list
  elements: str
  sample: [migrations/001_settings_table.sql, data/002_greeting_1_1.sql]
would_apply:
  description: Scripts that would be (check mode) or were applied, each with category, digest and statement count.
  returned: always
  type: list
  elements: dict
  sample: [{path: data/002_greeting_1_1.sql, category: data_scripts, sha256: 5d1c..., statements: 2}]
already_applied:
  description: Scripts of the manifest found in the ledger with the same digest, so not applied again.
  returned: always
  type: list
  elements: str
  sample: [data/001_greeting.sql]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.prodgate.deploy.plugins.module_utils import dml


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="dict", required=True),
            release_dir=dict(type="path", required=True),
            categories=dict(type="list", elements="str", choices=list(dml.CATEGORIES), default=list(dml.CATEGORIES)),
            change_id=dict(type="str", required=True),
            applied_by=dict(type="str", required=True),
            ledger_table=dict(type="str", default="prodgate_dml_ledger"),
            db_host=dict(type="str", default=""),
            db_port=dict(type="int", default=5432),
            db_name=dict(type="str", required=True),
            db_user=dict(type="str", default=""),
            db_password=dict(type="str", default="", no_log=True),
            connect_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, applied=[], would_apply=[], already_applied=[])
    release_dir = params["release_dir"]

    def read_file(rel):
        full = os.path.normpath(os.path.join(release_dir, rel))
        if not full.startswith(os.path.normpath(release_dir) + os.sep):
            raise dml.ScriptError("%s: path leaves the release directory" % rel)
        if not os.path.isfile(full):
            raise dml.ScriptError("%s: listed in the manifest but missing from %s" % (rel, release_dir))
        with open(full, "rb") as handle:
            return handle.read()

    conn = None
    try:
        table = dml.check_identifier(params["ledger_table"])
        conn = dml.connect(params)
        pending, done = dml.plan(params["manifest"], read_file, params["categories"], dml.read_ledger(conn, table))
        result["already_applied"] = done
        result["would_apply"] = [dict(path=p, category=c, sha256=d, statements=len(s)) for c, p, d, s in pending]
        if module.check_mode or not pending:
            result["changed"] = bool(pending)
            module.exit_json(**result)
        dml.ensure_ledger(conn, table)
        for item in pending:
            if dml.apply_script(conn, table, item, params["manifest"], params["change_id"], params["applied_by"]):
                result["applied"].append(item[1])
                result["changed"] = True
            else:
                result["already_applied"].append(item[1])
    except dml.ScriptError as exc:
        module.fail_json(msg=str(exc), **result)
    except Exception as exc:  # pylint: disable=broad-except  # driver errors: connection refused, authentication
        module.fail_json(msg="PostgreSQL: %s" % str(exc).strip(), **result)
    finally:
        if conn is not None:
            conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
