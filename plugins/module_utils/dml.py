# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data-initialisation scripts and schema migrations for PostgreSQL (Art. 10(3), Art. 8).

Art. 10(3): initial data must not be loaded by importing database files; only data manipulation
statements (DML), signed off by the business and risk control. So a data script may hold only
INSERT, UPDATE, DELETE, MERGE, SELECT and WITH statements, and no script (data or migration) may
load a file: COPY, psql meta-commands such as \\copy or \\i, large-object functions, and server
file-reading functions are refused, each refusal naming the script, the statement and why.

Schema migrations are a separate, declared category: DDL is allowed there, file loading is not.
The ledger records every applied script with its digest; a script already applied is skipped,
and an applied script whose digest changed is an error. Each script runs in its own transaction.
The database driver (psycopg2 on the hosts; psycopg 3 also works) is imported only when connecting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

DATA = "data_scripts"
MIGRATIONS = "migrations"
CATEGORIES = (MIGRATIONS, DATA)  # migrations first: data scripts may need the new schema

DML_COMMANDS = ("INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "WITH", "VALUES")
# Transaction control belongs to the applier (one transaction per script); DO/CALL run arbitrary code.
NEVER_COMMANDS = ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE",
                  "PREPARE", "DO", "CALL", "LOAD", "COPY", "IMPORT")
# Anything that loads a file or a large object (Art. 10(3)), whatever statement it appears in.
FILE_FUNCTIONS = ("lo_import", "lo_export", "lo_open", "lo_create", "lo_creat", "lo_from_bytea", "lo_put", "lo_get",
                  "lowrite", "loread", "lo_unlink", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
                  "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_file_write",
                  "pg_file_read", "dblink", "dblink_exec", "pg_largeobject")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$)
  | (?P<estring>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
  | (?P<meta>\\[A-Za-z!?]+)
  | (?P<semi>;)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class ScriptError(Exception):
    """A script is refused (content, digest or ledger); the message names the script and why."""


class Statement:
    def __init__(self, text, words, line):
        self.text = text.strip()
        self.words = words  # lower-cased bare words and unquoted identifiers, in order
        self.line = line

    @property
    def command(self):
        return self.words[0].upper() if self.words else ""

    def summary(self, limit=80):
        one = " ".join(self.text.split())
        return one if len(one) <= limit else one[:limit - 3] + "..."


def split_statements(sql):
    """Split SQL text into statements, honouring quotes, dollar quotes and comments."""
    statements, start, words, pos, line, first_line = [], 0, [], 0, 1, None
    meta = []
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        kind = match.lastgroup if match.lastgroup != "tag" else "dollar"
        if match.group("dollar"):
            kind = "dollar"
        end = match.end()
        if kind == "block_comment":
            depth, end = 1, pos + 2
            while depth and end < len(sql):
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
            if depth:
                raise ScriptError("unterminated /* comment at line %d" % line)
        elif kind == "dollar":
            close = sql.find(match.group("dollar"), end)
            if close < 0:
                raise ScriptError("unterminated dollar-quoted string at line %d" % line)
            end = close + len(match.group("dollar"))
        if kind not in ("space", "line_comment", "block_comment", "semi") and first_line is None:
            first_line = line
        if kind == "word":
            words.append(match.group().lower())
        elif kind == "ident":
            words.append(match.group()[1:-1].replace('""', '"').lower())
        elif kind == "meta":
            meta.append(match.group())
        if kind == "semi" or (kind == "meta"):
            text = sql[start:pos] if kind == "semi" else sql[start:end]
            if kind == "meta":
                # a psql meta-command runs to the end of its line
                eol = sql.find("\n", end)
                end = len(sql) if eol < 0 else eol
                text = sql[start:end]
                words = [match.group().lower()] + words
            if words or meta:
                statements.append(Statement(text, words, first_line))
            start, words, meta, first_line = end, [], [], None
        line += sql.count("\n", pos, end)
        pos = end
    if words:
        statements.append(Statement(sql[start:], words, first_line))
    return statements


def classify(sql, category, name="script"):
    """Return the statements of ``sql`` if allowed in ``category``; raise ScriptError naming the refused one."""
    if category not in CATEGORIES:
        raise ScriptError("%s: unknown category %s (expected one of %s)" % (name, category, ", ".join(CATEGORIES)))
    try:
        statements = split_statements(sql)
    except ScriptError as exc:
        raise ScriptError("%s: %s" % (name, exc))
    if not statements:
        raise ScriptError("%s: no SQL statements" % name)
    for stmt in statements:
        where = "%s line %d: %s" % (name, stmt.line or 0, stmt.summary())
        if stmt.command.startswith("\\"):
            raise ScriptError("%s: refused: psql meta-command %s loads files or runs outside SQL; "
                              "Art. 10(3) allows DML statements only" % (where, stmt.words[0]))
        if "copy" in stmt.words:
            raise ScriptError("%s: refused: COPY loads or exports files; Art. 10(3) forbids importing data files, "
                              "write the rows as INSERT statements" % where)
        functions = sorted(set(stmt.words) & set(FILE_FUNCTIONS))
        if functions:
            raise ScriptError("%s: refused: %s reads files or large objects; Art. 10(3) forbids loading data from files"
                              % (where, ", ".join(functions)))
        if stmt.command in NEVER_COMMANDS:
            raise ScriptError("%s: refused: %s is not allowed in a script; each script runs in one transaction "
                              "managed by prodgate.deploy.dml_apply" % (where, stmt.command))
        if category == DATA and stmt.command not in DML_COMMANDS:
            raise ScriptError("%s: refused: %s is not DML; a data-initialisation script may hold only %s "
                              "(Art. 10(3)); schema changes belong in the release's migrations"
                              % (where, stmt.command, ", ".join(DML_COMMANDS)))
    return statements


def sha256_text(data):
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def plan(manifest, read_file, categories, applied):
    """Decide what to run: [(category, path, digest, statements)] pending, [(path)] already applied.

    ``read_file(path) -> bytes``; ``applied`` maps script path -> digest from the ledger. Raises
    ScriptError for a digest that does not match the approved manifest, a changed applied script,
    or a refused statement; nothing runs unless the whole plan is valid.
    """
    pending, done = [], []
    for category in CATEGORIES:
        if category not in categories:
            continue
        for entry in manifest.get(category) or []:
            path, approved = entry.get("path"), entry.get("sha256")
            if not path or not approved:
                raise ScriptError("manifest %s entry %r needs path and sha256" % (category, entry))
            data = read_file(path)
            digest = sha256_text(data)
            if digest != approved:
                raise ScriptError("%s: digest %s does not match the approved manifest (%s); the script was altered "
                                  "after approval" % (path, digest, approved))
            if path in applied:
                if applied[path] != digest:
                    raise ScriptError("%s: already applied with digest %s, the release now has %s; an applied script "
                                      "must never change: ship the correction as a new script" % (path, applied[path], digest))
                done.append(path)
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ScriptError("%s: not UTF-8 text" % path)
            pending.append((category, path, digest, classify(text, category, path)))
    return pending, done


_IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def check_identifier(name):
    if not _IDENT.match(name or ""):
        raise ScriptError("ledger table name %r is invalid: use lower-case letters, digits and _ (optionally schema.table)" % name)
    return name


def connect(params):
    """Connect with psycopg2 (as on the hosts) or psycopg 3; a clear error if neither is installed."""
    kwargs = dict(host=params.get("db_host") or None, port=params.get("db_port") or None, dbname=params["db_name"],
                  user=params.get("db_user") or None, password=params.get("db_password") or None,
                  connect_timeout=params.get("connect_timeout") or 10)
    try:
        import psycopg2  # pylint: disable=import-outside-toplevel
        return psycopg2.connect(**kwargs)
    except ImportError:
        pass
    try:
        import psycopg  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ScriptError("psycopg2 is not installed on the target: install python3-psycopg2 (Debian) or python3-psycopg2 (RHEL)")
    return psycopg.connect(**kwargs)


LEDGER_DDL = """CREATE TABLE IF NOT EXISTS %s (
    script text PRIMARY KEY,
    category text NOT NULL,
    digest text NOT NULL,
    system text NOT NULL,
    version text NOT NULL,
    change_id text NOT NULL,
    applied_by text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def ledger_exists(conn, table):
    cur = conn.cursor()
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    found = cur.fetchone()[0]
    conn.rollback()
    return found


def read_ledger(conn, table):
    if not ledger_exists(conn, table):
        return {}
    cur = conn.cursor()
    cur.execute("SELECT script, digest FROM %s" % table)
    rows = dict(cur.fetchall())
    conn.rollback()
    return rows


def ensure_ledger(conn, table):
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
    cur.execute(LEDGER_DDL % table)
    conn.commit()


def apply_script(conn, table, item, manifest, change_id, applied_by):
    """Run one script and record it, in one transaction; False if another run applied it meanwhile."""
    category, path, digest, statements = item
    cur = conn.cursor()
    try:
        # Serialise concurrent appliers (several hosts of one system) on the ledger.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
        cur.execute("SELECT digest FROM %s WHERE script = %%s" % table, (path,))
        row = cur.fetchone()
        if row:
            conn.rollback()
            if row[0] != digest:
                raise ScriptError("%s: already applied with digest %s by a concurrent run, the release has %s" % (path, row[0], digest))
            return False
        for stmt in statements:
            try:
                cur.execute(stmt.text)
            except Exception as exc:  # the driver's error: name the statement, keep the database's message
                raise ScriptError("%s line %d: %s: failed: %s; the script's transaction was rolled back"
                                  % (path, stmt.line or 0, stmt.summary(), str(exc).strip()))
        cur.execute("INSERT INTO %s (script, category, digest, system, version, change_id, applied_by) "
                    "VALUES (%%s, %%s, %%s, %%s, %%s, %%s, %%s)" % table,
                    (path, category, digest, manifest.get("system", ""), str(manifest.get("version", "")), change_id, applied_by))
        conn.commit()
        return True
    except BaseException:
        conn.rollback()
        raise
