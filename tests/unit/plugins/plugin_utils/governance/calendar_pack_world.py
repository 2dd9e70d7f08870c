"""Signed calendar packs and policies for the calendar tests (real keys, real signatures).

YEAR_2027 is TEST DATA shaped like a State Council arrangement (holiday periods with make-up
weekend days); it is not the official 2027 arrangement and is never shipped.
"""
import copy
import os

import yaml

from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import calendar_pack, dsse, policy
from ansible_collections.prodgate.deploy.plugins.plugin_utils.governance import policy_schema

YEAR_2027 = {
    "schema": calendar_pack.PACK_SCHEMA,
    "version": 1,
    "year": 2027,
    "sources": {
        "working_days": {"title": "TEST DATA, not the official notice", "url": "https://example.invalid/2027-notice"},
        "exchanges": {"XSHG": {"title": "TEST DATA", "url": "https://example.invalid/xshg-2027"}},
    },
    "holidays": [
        {"name": "New Year's Day", "name_zh": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
        {"name": "Spring Festival", "name_zh": "春节", "from": "2027-02-06", "to": "2027-02-14"},
        {"name": "National Day", "name_zh": "国庆节", "from": "2027-10-01", "to": "2027-10-07"},
    ],
    "makeup_working_days": [
        {"date": "2027-02-20", "for": "Spring Festival"},
        {"date": "2027-09-26", "for": "National Day"},
        {"date": "2027-10-09", "for": "National Day"},
    ],
    "exchange_closures": [{"date": "2027-02-05", "name": "Spring Festival Eve", "exchanges": ["XSHG", "XSHE"]}],
}


class Governance:
    """Governance key holders: ``threshold`` of ``count`` keys."""

    def __init__(self, count=2, threshold=2):
        self.keys = [dsse.generate_private_key() for _index in range(count)]
        self.threshold = threshold

    def section(self):
        return {"threshold": self.threshold,
                "keys": [{"holder": f"gov{i}", "public_key": dsse.public_key_hex(k.public_key())} for i, k in enumerate(self.keys)]}

    def write_root(self, path):
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"governance": self.section()}, handle)
        return str(path)


def write_pack(path, governance, data=None, signers=None, **changes):
    """A pack signed by ``signers`` (default: the threshold's first keys); returns its sha256."""
    doc = copy.deepcopy(data or YEAR_2027)
    doc.update(changes)
    for key in (signers if signers is not None else governance.keys[:governance.threshold]):
        calendar_pack.sign_pack(doc, key)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(calendar_pack.dump_pack(doc))
    return calendar_pack.read_pack(str(path))[1]


WINDOWS = [
    {"name": "trading-sessions", "kind": "deny", "calendar": "trading_session", "categories": ["core_business"]},
    {"name": "year-end-close", "kind": "deny", "calendar": "year_end_close"},
]


def write_policy(path, governance, packs=None, windows=None, calendar=None, lead_time=3):
    """A signed policy (schema-valid) naming ``packs`` [(file, sha256)] in calendar.packs."""
    section = dict(calendar or {})
    if packs:
        section["packs"] = [{"file": name, "sha256": digest} for name, digest in packs]
    doc = {
        "schema": policy_schema.POLICY_SCHEMA, "version": 1, "expires": "2099-01-01T00:00:00+08:00",
        "governance": governance.section(),
        "systems": [{"id": "ta-core", "name": "TA core", "category": "core_business", "type": "custom",
                     "owner_department": "operations", "environments": ["production", "staging"]}],
        "people": [],
        "freeze_windows": windows if windows is not None else WINDOWS,
        "calendar": section,
        "lead_time_working_days": lead_time,
    }
    for key in governance.keys[:governance.threshold]:
        policy.sign_document(doc, key)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(policy.dump_document(doc))
    return str(path)


def world(folder, with_pack=True, **policy_args):
    """(governance, policy path, root path) with the 2027 pack beside the policy when asked."""
    gov = Governance()
    packs = [("calendar-2027.yml", write_pack(os.path.join(folder, "calendar-2027.yml"), gov))] if with_pack else None
    policy_path = write_policy(os.path.join(folder, "policy.yml"), gov, packs, **policy_args)
    return gov, policy_path, gov.write_root(os.path.join(folder, "governance-root.yml"))
