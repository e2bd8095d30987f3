"""Loading the city's directory (districts, categories, units) from YAML or CSV, idempotently."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.errors import ValidationFailed
from models.directory import Category, District, Unit
from models.enums import UnitKind


@dataclass
class LoadSummary:
    districts: int = 0
    categories: int = 0
    units: int = 0
    changed: int = 0


def read_directory(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Read a directory file into flat lists; YAML trees (children, streets) become parent references."""
    if not path.exists():
        raise ValidationFailed(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: expected a mapping with districts, categories and units")
    districts = []
    for d in data.get("districts", []):
        districts.append({**d, "parent": None})
        districts += [{**s, "parent": d["code"], "name_en": s.get("name_en", "")} for s in d.get("streets", [])]
    return {"districts": districts, "categories": list(_flatten(data.get("categories", []), None)),
            "units": list(data.get("units", []))}


def _flatten(nodes: list[dict[str, Any]], parent: str | None) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield {**node, "parent": parent}
        yield from _flatten(node.get("children", []), node["code"])


def _read_csv(path: Path) -> dict[str, list[dict[str, Any]]]:
    """CSV: one row per entry, a `section` column (district, category, unit) and the YAML's field names."""
    out: dict[str, list[dict[str, Any]]] = {"districts": [], "categories": [], "units": []}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            section = (row.get("section") or "").strip() + "s"
            if section not in out:
                raise ValidationFailed(f"{path}:{line}: section must be district, category or unit")
            row = {k: v for k, v in row.items() if v not in ("", None) and k != "section"}
            if section == "categories":
                row["keywords_zh"] = row.get("keywords_zh", "").split("|") if row.get("keywords_zh") else []
            if section == "units":
                row["leader"] = {k: row.pop(f"leader_{k}", "") for k in ("name", "email", "phone")}
            out[section].append(row)
    return out


def _check(entries: dict[str, list[dict[str, Any]]], path: Path) -> None:
    problems = []
    for section, required in (("districts", ("code", "name_zh")), ("categories", ("code", "name_zh")),
                              ("units", ("code", "name_zh", "kind", "email"))):
        seen: set[str] = set()
        for i, entry in enumerate(entries[section]):
            missing = [k for k in required if not entry.get(k)]
            if missing:
                problems.append(f"{section}[{i}] ({entry.get('code', '?')}): missing {', '.join(missing)}")
            if entry.get("code") in seen:
                problems.append(f"{section}[{i}]: code {entry['code']!r} appears twice")
            seen.add(entry.get("code"))
            if section == "units" and entry.get("kind") not in {k.value for k in UnitKind}:
                problems.append(f"units[{i}] ({entry.get('code')}): kind must be one of {[k.value for k in UnitKind]}")
    if problems:
        raise ValidationFailed(f"{path}: the directory is invalid, nothing was loaded:\n  " + "\n  ".join(problems))


def load_directory(*, session: Session, path: Path) -> LoadSummary:
    """Insert or update every entry by its code; loading the same file twice changes nothing."""
    entries = read_directory(path)
    _check(entries, path)
    summary = LoadSummary()
    districts = _upsert(session, District, entries["districts"], summary, lambda e: {
        "name_zh": e["name_zh"], "name_en": e.get("name_en", "")})
    _link_parents(session, District, entries["districts"], districts, path)
    categories = _upsert(session, Category, entries["categories"], summary, lambda e: {
        "name_zh": e["name_zh"], "name_en": e.get("name_en", ""), "keywords": list(e.get("keywords_zh", []))})
    _link_parents(session, Category, entries["categories"], categories, path)

    def unit_fields(e: dict[str, Any]) -> dict[str, Any]:
        leader = e.get("leader") or {}
        district = districts.get(e.get("district")) if e.get("district") else None
        if e.get("district") and district is None:
            raise ValidationFailed(f"{path}: unit {e['code']}: unknown district {e['district']!r}")
        return {"name_zh": e["name_zh"], "name_en": e.get("name_en", ""), "kind": e["kind"], "email": e["email"],
                "district_id": district.id if district else None, "leader_name": leader.get("name", ""),
                "leader_email": leader.get("email", ""), "leader_phone": str(leader.get("phone", ""))}

    units = _upsert(session, Unit, entries["units"], summary, unit_fields)
    _link_parents(session, Unit, entries["units"], units, path)
    summary.districts, summary.categories, summary.units = len(districts), len(categories), len(units)
    return summary


def _upsert(session: Session, model: type, entries: list[dict[str, Any]], summary: LoadSummary,
            fields: Any) -> dict[str, Any]:
    existing = {row.code: row for row in session.scalars(select(model))}
    for entry in entries:
        values = fields(entry)
        row = existing.get(entry["code"])
        if row is None:
            row = model(code=entry["code"], **values)
            session.add(row)
            existing[entry["code"]] = row
            summary.changed += 1
        else:
            for key, value in values.items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
                    summary.changed += 1
    session.flush()
    return existing


def _link_parents(session: Session, model: type, entries: list[dict[str, Any]], rows: dict[str, Any],
                  path: Path) -> None:
    for entry in entries:
        parent_code = entry.get("parent")
        parent = rows.get(parent_code) if parent_code else None
        if parent_code and parent is None:
            raise ValidationFailed(f"{path}: {model.__tablename__} {entry['code']}: unknown parent {parent_code!r}")
        row = rows[entry["code"]]
        if row.parent_id != (parent.id if parent else None):
            row.parent_id = parent.id if parent else None
    session.flush()
