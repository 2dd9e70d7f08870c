# -*- coding: utf-8 -*-
# Copyright: prodgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emergency override: the only way through a freeze (Art. 24), signed by the policy's authorisers."""
from ..base import iso
from .lead_time import approval_field, approval_time


class Override:
    def __init__(self, ok, roles, threshold, used, message):
        self.ok, self.roles, self.threshold, self.used, self.message = ok, roles, threshold, used, message

    def as_dict(self):
        return {"ok": self.ok, "authorisers": list(self.roles), "threshold": self.threshold,
                "approvals": self.used, "message": self.message}


def check_emergency_override(approvals, roles, threshold=1, at=None):
    """A frozen change passes only with verified ``emergency_override`` approvals, each with a
    reason, from ``threshold`` distinct people holding one of ``roles`` (the policy's
    ``emergency.authorisers``), valid at ``at`` when they carry not_before / not_after.
    There is no other bypass: no role, flag or variable skips a freeze."""
    roles = tuple(roles or ())
    if not roles or not threshold or threshold < 1:
        return Override(False, roles, threshold, [], "the policy names no role that may authorise an emergency override "
                                                     "(emergency.authorisers): wait for the next open slot")
    used, persons, rejected = [], set(), []
    for item in approvals:
        if approval_field(item, "stage") != "emergency_override" or approval_field(item, "decision", "approve") != "approve":
            continue
        role, person, reason = approval_field(item, "role"), approval_field(item, "person"), approval_field(item, "reason")
        if role not in roles:
            rejected.append(f"{person} signed as {role}, which may not authorise overrides")
        elif not (isinstance(reason, str) and reason.strip()):
            rejected.append(f"{person} ({role}) gave no reason")
        elif at is not None and not _within(item, at):
            rejected.append(f"{person} ({role}) is not valid at {at.isoformat()}")
        elif person not in persons:
            persons.add(person)
            used.append({"role": role, "person": person, "reason": reason.strip(),
                         "issued_at": iso(approval_field(item, "issued_at")), "not_after": iso(approval_field(item, "not_after"))})
    if len(persons) < threshold:
        detail = f"; not counted: {'; '.join(rejected)}" if rejected else ""
        return Override(False, roles, threshold, used,
                        f"no emergency override: it needs {threshold} signed emergency_override approval(s) with a reason "
                        f"from {list(roles)}, found {len(persons)}{detail}; "
                        "sign with `prodgate approve --stage emergency_override --reason ...`")
    return Override(True, roles, threshold, used, "emergency override used: " + "; ".join(
        f"{u['person']} ({u['role']}): {u['reason']}" for u in used))


def _within(item, at):
    nb, na = approval_field(item, "not_before"), approval_field(item, "not_after")
    if nb is not None and at < approval_time(nb, "not_before"):
        return False
    if na is not None and at >= approval_time(na, "not_after"):
        return False
    return True
