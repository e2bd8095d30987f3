"""How citizens' contact details may appear outside the database."""

import re

_DIGITS = re.compile(r"\D")


def mask_phone(phone: str) -> str:
    """138****1234 for a mobile number; keep at most the first three and last four digits of anything."""
    digits = _DIGITS.sub("", phone or "")
    if not digits:
        return ""
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def citizen_label(name: str, phone: str, confidential: bool) -> str:
    """What a unit may see of the citizen: nothing for a confidential one, else a surname and a masked phone."""
    if confidential:
        return ""
    surname = f"{name[:1]}先生/女士" if name else ""
    return " ".join(part for part in (surname, mask_phone(phone)) if part)


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def scrub(text: str) -> str:
    """Mask mobile numbers a citizen typed into free text before it leaves the database."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text or "")
