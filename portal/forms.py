"""The unit forms: reading what was typed, checking it with messages a person can act on, and evidence files."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData, UploadFile

from duban.errors import ValidationFailed
from duban.settings import get_settings

# What an evidence file must start with; the name a browser sends proves nothing.
PHOTO_SIGNATURES: dict[bytes, str] = {
    b"\xff\xd8\xff": ".jpg",
    b"\x89PNG\r\n\x1a\n": ".png",
    b"GIF87a": ".gif",
    b"GIF89a": ".gif",
}
DOCUMENT_SIGNATURES: dict[bytes, str] = {b"%PDF-": ".pdf"}


@dataclass
class Submitted:
    """A form as typed: the values to show again if it must be corrected, and its files."""

    values: dict[str, str]
    files: list[UploadFile] = field(default_factory=list)

    def text(self, name: str) -> str:
        return self.values.get(name, "").strip()


def read_form(form: FormData, *, file_field: str | None = None) -> Submitted:
    """Text fields as typed, and the non-empty files of one file field."""
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    files = [f for f in form.getlist(file_field) if isinstance(f, UploadFile) and f.filename] if file_field else []
    return Submitted(values=values, files=files)


def _kind(head: bytes, documents: bool) -> str | None:
    signatures = PHOTO_SIGNATURES | (DOCUMENT_SIGNATURES if documents else {})
    for magic, suffix in signatures.items():
        if head.startswith(magic):
            return suffix
    if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1"}:
        return ".heic"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ".webp"
    return None


def save_evidence(files: list[UploadFile], *, order_number: str, documents: bool = False) -> list[str]:
    """Check and store evidence files; returns their paths under the upload directory; all or nothing."""
    settings = get_settings()
    limit = settings.upload_max_mb * 1024 * 1024
    checked: list[tuple[bytes, str]] = []
    for upload in files:
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise ValidationFailed(f"文件“{upload.filename}”超过 {settings.upload_max_mb} MB。"
                                   f"The file {upload.filename!r} is larger than {settings.upload_max_mb} MB.")
        suffix = _kind(data[:16], documents)
        if not data or suffix is None:
            zh, en = ("照片或PDF文件", "a photo or a PDF") if documents else ("照片", "a photo")
            raise ValidationFailed(f"文件“{upload.filename}”不是{zh}（JPEG、PNG、GIF、WebP、HEIC）。"
                                   f"The file {upload.filename!r} is not {en} (JPEG, PNG, GIF, WebP, HEIC).")
        checked.append((data, suffix))
    folder = settings.upload_dir / order_number
    saved: list[str] = []
    try:
        for data, suffix in checked:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{order_number}/{uuid.uuid4().hex}{suffix}"
            (settings.upload_dir / name).write_bytes(data)
            saved.append(name)
    except OSError:
        discard_evidence(saved)
        raise
    return saved


def discard_evidence(paths: list[str]) -> None:
    """Remove stored evidence of a submission that was refused, so nothing half-written remains."""
    root = get_settings().upload_dir
    for name in paths:
        Path(root / name).unlink(missing_ok=True)


def yes_no(value: str, question: str) -> bool:
    """A required yes/no radio answer."""
    if value not in {"yes", "no"}:
        raise ValidationFailed(f"请选择：{question}")
    return value == "yes"


def local_datetime(value: str, zone: str) -> datetime:
    """A datetime-local field (YYYY-MM-DDTHH:MM, local time) as an aware time."""
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("请填写新的办理期限（日期和时间）。Enter the new deadline as a date and time.") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ZoneInfo(zone))


def required(submitted: Submitted, name: str, message: str) -> str:
    """A text field that may not be blank."""
    value = submitted.text(name)
    if not value:
        raise ValidationFailed(message)
    return value


def form_context(submitted: Submitted | None, error: Exception | str | None = None) -> dict[str, Any]:
    """What a form page needs to show the values again, with the problem above them."""
    return {"values": submitted.values if submitted else {}, "error": str(error) if error else ""}
