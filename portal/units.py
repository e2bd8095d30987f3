"""The unit action pages: a GET shows, only a POST from the page changes anything, and only with a valid link."""

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from duban.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from models.base import utcnow
from models.enums import label
from portal.forms import (
    Submitted,
    discard_evidence,
    form_context,
    local_datetime,
    read_form,
    required,
    save_evidence,
    yes_no,
)
from portal.pages import render
from portal.wakeups import WAKER
from portal.writer import reading_then_writing
from tasks import actions
from tasks.actions import ON_SITE_REJECTION, Outcome
from tasks.tokens import FORGED, Grant, LinkRefused, looks_signed, request_fresh_link, use_token
from tasks.transitions import Actor
from tasks.unit_views import OrderView, inbox_view, open_order, unit_choices

router = APIRouter(prefix="/u", tags=["unit pages"], include_in_schema=False)

FORMS = ("sign", "reply", "return", "extension")
VERBS = {"sign": ("签收", "sign for it"), "reply": ("回复", "reply"), "return": ("申请退单", "ask to return it"),
         "extension": ("申请延期", "ask for an extension")}
MAX_FILES = 10
# What the page says after a successful submission, by the `done` code in the redirect.
DONE: dict[str, tuple[str, str]] = {
    "sign": ("已签收，请按时办理并回复。", "Signed for. Handle the order and reply in time."),
    "reply": ("办结回复已提交，等待热线办审核或回访。",
              "Reply submitted; the hotline office reviews it or calls the citizen."),
    "return": ("退单申请已提交，等待热线办审核。", "Return request submitted; the hotline office decides it."),
    "return_auto_rejected": (ON_SITE_REJECTION + "。工单仍由贵单位办理。",
                             "Rejected automatically: a return in this category needs on-site evidence (a photo "
                             "or a verification note). The order stays with your unit."),
    "extension": ("延期申请已提交，等待热线办审核；审批前原期限不变。",
                  "Extension requested; the deadline stays until the hotline office approves it."),
}


def _refused(request: Request, token: str, exc: LinkRefused) -> HTMLResponse:
    status = 410 if exc.renewable else 403
    return render(request, "refused.html", status_code=status, message=str(exc), token=token,
                  renewable=exc.renewable)


@router.get("/{token}", response_class=HTMLResponse)
def open_link(request: Request, token: str) -> Response:
    """An order link shows its order; an inbox link shows the unit's open orders."""
    try:
        grant, view = open_order(token=token, number=None, now=utcnow())
        if view is not None:
            return _order_page(request, token, grant, view)
        rows, zone = inbox_view(grant=grant, now=utcnow())
    except LinkRefused as exc:
        return _refused(request, token, exc)
    return render(request, "inbox.html", token=token, unit_name=grant.unit_name, rows=rows, zone=zone,
                  expires_at=grant.expires_at)


@router.get("/{token}/orders/{number}", response_class=HTMLResponse)
def order_page(request: Request, token: str, number: str, done: str = "") -> Response:
    """The order: content, deadlines, history, and what the unit may do now."""
    try:
        grant, view = open_order(token=token, number=number, now=utcnow())
    except LinkRefused as exc:
        return _refused(request, token, exc)
    return _order_page(request, token, grant, view, done)


def _order_page(request: Request, token: str, grant: Grant, view: OrderView, done: str = "") -> HTMLResponse:
    return render(request, "order.html", token=token, order=view, grant=grant, done=DONE.get(done),
                  auto_rejected=done == "return_auto_rejected")


@router.get("/{token}/orders/{number}/{action}", response_class=HTMLResponse)
def form_page(request: Request, token: str, number: str, action: str) -> Response:
    """The form for one action, empty."""
    if action not in FORMS:
        return render(request, "problem.html", status_code=404, token=token, number=number,
                      message=f"没有“{action}”这个操作。There is no action {action!r}.")
    try:
        return _form(request, token, number, action, None)
    except LinkRefused as exc:
        return _refused(request, token, exc)


def _form(request: Request, token: str, number: str, action: str, submitted: Submitted | None,
          error: Exception | str | None = None, status_code: int = 200) -> HTMLResponse:
    grant, view = open_order(token=token, number=number, now=utcnow(), history=False)
    extra = {"units": unit_choices(exclude_unit_id=grant.unit_id)} if action == "return" else {}
    return render(request, f"{action}.html", status_code=status_code, token=token, order=view,
                  **form_context(submitted, error), **extra)


@dataclass(frozen=True)
class Submission:
    """One validated submission, ready to run in the transaction that uses its link up."""

    run: Callable[[Actor, Session], Outcome]
    files: list[str]
    done: Callable[[Outcome], str]


class NotNow(Exception):
    """The action is not one the order's status allows now."""


@router.post("/{token}/orders/{number}/{action}", response_class=HTMLResponse)
async def submit(request: Request, token: str, number: str, action: str) -> Response:
    """Run one action for the unit: check the link and the form, use the link up, act, show the result."""
    if action not in FORMS:
        return render(request, "problem.html", status_code=404, token=token, number=number,
                      message=f"没有“{action}”这个操作。There is no action {action!r}.")
    if not looks_signed(token):
        # Refused before the body is read, so a forged link cannot make the portal store an upload.
        return _refused(request, token, LinkRefused("invalid", FORGED))
    async with request.form(max_files=MAX_FILES) as form:
        submitted = read_form(form, file_field="files")
        return await run_in_threadpool(_submit, request, token, number, action, submitted)


def _submit(request: Request, token: str, number: str, action: str, submitted: Submitted) -> Response:
    files: list[str] = []
    try:
        with reading_then_writing() as (reading, writing):
            grant, view = open_order(token=token, number=number, now=utcnow(), history=False, session=reading)
            if action not in view.actions:
                raise NotNow(_not_now(action, view.status))
            # Evidence is checked and stored before the write turn, which it would otherwise hold up.
            submission = _validate(action, submitted, view)
            files = submission.files
            # The link is used up in the action's transaction: a refusal rolls both back. The order's
            # version as read above makes a change meanwhile a conflict; the run is woken after the commit.
            with writing() as session:
                successor = use_token(session=session, grant=grant, at=utcnow())
                outcome = submission.run(Actor.unit(grant.unit_id, grant.unit_code), session)
    except Exception as exc:
        discard_evidence(files)
        if isinstance(exc, LinkRefused):
            return _refused(request, token, exc)
        if isinstance(exc, ValidationFailed | NotFound):
            return _form(request, token, number, action, submitted, exc, status_code=422)
        if isinstance(exc, NotNow | InvalidTransition | Conflict):
            return render(request, "problem.html", status_code=409, token=token, number=number, message=str(exc))
        raise
    WAKER.wake_soon(view.id)
    return RedirectResponse(f"/u/{successor}/orders/{number}?done={submission.done(outcome)}", status_code=303)


def _not_now(action: str, status: str) -> str:
    zh, en = VERBS[action]
    return f"工单当前状态为“{label(status)}”，不能{zh}。The order is {label(status, 'en')}; you cannot {en} now."


def _validate(action: str, submitted: Submitted, view: OrderView) -> Submission:
    """Check the form before anything is written; evidence files are stored last, all or nothing."""
    order_id = view.id
    if action == "sign":
        return Submission(lambda actor, session: actions.sign(order_id=order_id, actor=actor, session=session,
                                                              expected_version=view.version), [], lambda _: "sign")
    if action == "reply":
        text = required(submitted, "text", "请填写办理结果。Describe what was done.")
        contacted = yes_no(submitted.text("contacted"), "是否已联系市民 Was the citizen contacted?")
        solved = yes_no(submitted.text("solved"), "问题是否已解决 Is the matter solved?")
        files = save_evidence(submitted.files, order_number=view.number, documents=True)
        return Submission(lambda actor, session: actions.reply(
            order_id=order_id, actor=actor, text=text, contacted=contacted, solved=solved, evidence_files=files,
            expected_version=view.version, session=session), files, lambda _: "reply")
    if action == "return":
        reason = required(submitted, "reason", "请填写退单理由。Give the reason for the return.")
        note = submitted.text("evidence_note")
        # Refused up front, keeping what was typed; a unit that insists gets the lifecycle's automatic
        # rejection, which counts against it, and the page says so.
        if view.on_site and not note and not submitted.files and submitted.text("insist") != "yes":
            raise ValidationFailed(
                "此类别须到现场核实：请上传现场照片或填写核实说明后再申请退单；否则退单将被系统自动驳回并计入考核。"
                "This category needs on-site evidence: attach a photo from the scene or write what you verified "
                "there. Without it the return is rejected automatically and counted against your unit.")
        suggested = submitted.text("suggested_unit") or None
        files = save_evidence(submitted.files, order_number=view.number)
        return Submission(
            lambda actor, session: actions.request_return(
                order_id=order_id, actor=actor, reason=reason, suggested_unit_code=suggested, evidence_note=note,
                evidence_files=files, expected_version=view.version, session=session),
            files, lambda outcome: "return_auto_rejected" if outcome.auto_rejected else "return")
    reason = required(submitted, "reason", "请填写延期理由。Give the reason for the extension.")
    new_due = local_datetime(submitted.text("new_due_at"), view.timezone)
    if view.due_at and new_due <= view.due_at:
        raise ValidationFailed("新的办理期限须晚于当前期限。The new deadline must be after the current one.")
    return Submission(lambda actor, session: actions.request_extension(
        order_id=order_id, actor=actor, reason=reason, new_due_at=new_due, session=session), [], lambda _: "extension")


@router.post("/{token}/fresh", response_class=HTMLResponse)
def fresh_link(request: Request, token: str) -> Response:
    """Mail a fresh link to the unit of an expired or used one, at the address the hotline has on file."""
    try:
        unit_name = request_fresh_link(token=token)
    except LinkRefused as exc:
        return _refused(request, token, exc)
    return render(request, "fresh_sent.html", unit_name=unit_name)
