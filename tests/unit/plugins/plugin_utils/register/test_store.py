"""Register storage (register/store.py), the SQLite backend: migrations, an append-only hash chain,
streamed reads, and database errors turned into RegisterError."""
import sqlite3

import pytest

from ansible_collections.prodgate.deploy.plugins.plugin_utils.errors import RegisterError
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.chain import GENESIS, entry_hash
from ansible_collections.prodgate.deploy.plugins.plugin_utils.register.store import open_store, redact_url, wrap_db_errors


@pytest.fixture(name="store")
def fixture_store(tmp_path):
    store = open_store("sqlite://" + str(tmp_path / "r.db"))
    store.migrate()
    yield store
    store.close()


def test_appends_chain_onto_the_head_and_read_back_in_order(store):
    rows = store.append(['{"n":1}', '{"n":2}'])
    assert [r[0] for r in rows] == [1, 2]
    assert rows[0][1] == GENESIS and rows[0][2] == entry_hash(GENESIS, '{"n":1}') and rows[1][1] == rows[0][2]
    store.append(['{"n":3}'])
    assert store.head()[0] == 3 and [r[3] for r in store.iter_rows(start=2)] == ['{"n":2}', '{"n":3}']
    assert store.lookup(rows[1][2]) == 2 and store.lookup("00" * 32) is None and store.row(1)[3] == '{"n":1}'
    assert list(store.bodies(like='%"n":2%')) == [(2, '{"n":2}')]


def test_migrations_apply_once_and_the_register_keeps_its_id(store, tmp_path):
    register_id = store.register_id()
    assert store.migrate() == [] and store.schema_version() >= 1
    again = open_store(str(tmp_path / "r.db"))
    assert again.migrate() == [] and again.register_id() == register_id
    again.close()


def test_entries_can_be_neither_changed_nor_deleted(store, tmp_path):
    store.append(['{"n":1}'])
    with sqlite3.connect(tmp_path / "r.db") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE register_entries SET body = '{}' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM register_entries")
    assert store.row(1)[3] == '{"n":1}'


def test_database_errors_become_register_errors_and_urls_lose_their_password():
    def broken():
        raise sqlite3.OperationalError("disk I/O error")
    with pytest.raises(RegisterError, match="register write failed: OperationalError: disk I/O error"):
        wrap_db_errors(broken)()
    assert "s3cret" not in redact_url("postgresql://prodgate:s3cret@db.example/register")
