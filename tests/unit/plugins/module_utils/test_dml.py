"""DML-only data scripts (Art. 10(3)): the classifier and the plan (digests, ledger)."""
import pytest

from ansible_collections.prodgate.deploy.plugins.module_utils import dml
from ansible_collections.prodgate.deploy.plugins.module_utils.dml import ScriptError

SEED = """-- base data, signed off by the business and risk control
INSERT INTO settings (key, value) VALUES ('greeting', 'it''s; fine -- not a comment');
UPDATE settings SET value = $$drop table x; copy y from '/etc/passwd'$$ WHERE key = 'motd';
/* a block comment with CREATE TABLE and COPY in it /* nested */ still comment */
WITH old AS (SELECT key FROM settings WHERE key LIKE 'tmp%') DELETE FROM settings WHERE key IN (SELECT key FROM old);
MERGE INTO settings s USING (VALUES ('a', 'b')) v(k, x) ON s.key = v.k WHEN NOT MATCHED THEN INSERT VALUES (v.k, v.x);
SELECT count(*) FROM settings
"""


def test_dml_script_splits_into_its_statements_ignoring_quotes_and_comments():
    statements = dml.classify(SEED, dml.DATA, "data/001.sql")
    assert [s.command for s in statements] == ["INSERT", "UPDATE", "WITH", "MERGE", "SELECT"]
    assert statements[0].text.endswith("'it''s; fine -- not a comment')")
    assert [s.line for s in statements] == [2, 3, 5, 6, 7]


@pytest.mark.parametrize("sql,refused", [
    ("CREATE TABLE t (id int);", "CREATE is not DML"),
    ("insert into t values (1);\nalter table t add column x int;", "line 2: alter table t add column x int: refused: ALTER is not DML"),
    ("DROP TABLE settings;", "DROP is not DML"),
    ("TRUNCATE settings;", "TRUNCATE is not DML"),
    ("GRANT ALL ON settings TO public;", "GRANT is not DML"),
    ("COPY settings FROM '/tmp/settings.csv';", "COPY settings FROM '/tmp/settings.csv': refused: COPY loads or exports files"),
    ("copy settings from stdin;", "refused: COPY loads"),
    ("\\copy settings from 'settings.csv' csv\n", "psql meta-command \\copy"),
    ("INSERT INTO t VALUES (1);\n\\i other.sql\n", "line 2: \\i other.sql: refused: psql meta-command \\i"),
    ("SELECT lo_import('/etc/passwd');", "lo_import reads files or large objects"),
    ("INSERT INTO t SELECT pg_read_file('/etc/passwd');", "pg_read_file reads files"),
    ("INSERT INTO t SELECT pg_catalog.pg_read_binary_file('x');", "pg_read_binary_file reads files"),
    ("SELECT * FROM pg_ls_dir('.');", "pg_ls_dir reads files"),
    ('SELECT "LO_IMPORT"(\'/x\');', "lo_import reads files"),
    ("BEGIN; INSERT INTO t VALUES (1); COMMIT;", "BEGIN is not allowed in a script"),
    ("DO $$BEGIN EXECUTE 'drop table t'; END$$;", "DO is not allowed"),
    ("-- only a comment\n", "no SQL statements"),
])
def test_data_script_refusals_name_the_statement_and_reason(sql, refused):
    with pytest.raises(ScriptError) as err:
        dml.classify(sql, dml.DATA, "data/002.sql")
    assert str(err.value).startswith("data/002.sql")
    assert refused in str(err.value)


def test_migrations_allow_ddl_but_never_file_loading():
    assert [s.command for s in dml.classify("CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN v text;", dml.MIGRATIONS, "m")] == ["CREATE", "ALTER"]
    with pytest.raises(ScriptError, match="COPY loads"):
        dml.classify("CREATE TABLE t (id int);\nCOPY t FROM '/tmp/t.csv';", dml.MIGRATIONS, "m")
    with pytest.raises(ScriptError, match="lo_import"):
        dml.classify("CREATE TABLE t AS SELECT lo_import('/etc/hosts') AS oid;", dml.MIGRATIONS, "m")


def test_unterminated_quotes_are_refused():
    with pytest.raises(ScriptError, match="unterminated dollar-quoted"):
        dml.classify("INSERT INTO t VALUES ($x$abc);", dml.DATA, "d")
    with pytest.raises(ScriptError, match="unterminated /"):
        dml.classify("INSERT INTO t VALUES (1); /* open", dml.DATA, "d")


def manifest_for(files):
    return {"system": "s", "version": "1", "migrations": [{"path": "migrations/1.sql", "sha256": dml.sha256_text(files["migrations/1.sql"])}],
            "data_scripts": [{"path": p, "sha256": dml.sha256_text(files[p])} for p in sorted(files) if p.startswith("data/")]}


FILES = {"migrations/1.sql": b"CREATE TABLE t (id int);", "data/1.sql": b"INSERT INTO t VALUES (1);", "data/2.sql": b"INSERT INTO t VALUES (2);"}


def test_plan_runs_migrations_first_and_skips_what_the_ledger_has():
    manifest = manifest_for(FILES)
    pending, done = dml.plan(manifest, FILES.__getitem__, dml.CATEGORIES, {})
    assert [(c, p) for c, p, _digest, _stmts in pending] == [("migrations", "migrations/1.sql"), ("data_scripts", "data/1.sql"), ("data_scripts", "data/2.sql")]
    applied = {p: dml.sha256_text(FILES[p]) for p in FILES}
    assert dml.plan(manifest, FILES.__getitem__, dml.CATEGORIES, applied) == ([], ["migrations/1.sql", "data/1.sql", "data/2.sql"])
    pending = dml.plan(manifest, FILES.__getitem__, [dml.DATA], {})[0]
    assert [p for _cat, p, _digest, _stmts in pending] == ["data/1.sql", "data/2.sql"]


def test_plan_refuses_a_script_that_differs_from_the_approved_manifest():
    manifest = manifest_for(FILES)
    altered = dict(FILES, **{"data/2.sql": b"DELETE FROM t;"})
    with pytest.raises(ScriptError, match=r"data/2.sql: digest [0-9a-f]{64} does not match the approved manifest"):
        dml.plan(manifest, altered.__getitem__, dml.CATEGORIES, {})


def test_plan_refuses_a_changed_script_that_was_already_applied():
    manifest = manifest_for(FILES)
    with pytest.raises(ScriptError, match="data/1.sql: already applied with digest 0+, the release now has"):
        dml.plan(manifest, FILES.__getitem__, dml.CATEGORIES, {"data/1.sql": "0" * 64})


def test_plan_refuses_ddl_in_a_data_script_before_anything_runs():
    files = dict(FILES, **{"data/2.sql": b"DROP TABLE t;"})
    with pytest.raises(ScriptError, match="data/2.sql line 1: DROP TABLE t: refused: DROP is not DML"):
        dml.plan(manifest_for(files), files.__getitem__, dml.CATEGORIES, {})


def test_ledger_table_name_is_checked():
    assert dml.check_identifier("ops.prodgate_dml_ledger") == "ops.prodgate_dml_ledger"
    with pytest.raises(ScriptError, match="invalid"):
        dml.check_identifier("x; drop table y")
