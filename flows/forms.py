"""The typed forms supervisors and hotline staff fill in on a suspended order run in the Prefect UI."""

from typing import Any, Literal

from prefect.input import RunInput
from pydantic import Field, create_model

from tasks.markup import quoted, typed

FORMS = ("return-decision", "extension-decision", "reply-review", "return-visit", "case-decision")

# Every form carries the order version it was drawn for, so a decision on an order that has moved on is refused.
_VERSION = "工单版本，请勿修改 / order version the form was drawn for; leave as is"
# Through the Duban gateway the field is filled with the signed-in person's name, whatever was typed; without
# it, the run refuses a form with no name (tasks/lifecycle.py) and offers the form again.
_SIGNED = ("签名 / your name, recorded as the decider in the order's history. Through the Duban gateway leave it "
           "empty: your sign-in name is used")


def _model(name: str, fields: dict[str, Any]) -> type[RunInput]:
    return create_model(name, __base__=RunInput, **fields)


def build_form(form: str, context: dict[str, Any]) -> tuple[type[RunInput], str, dict[str, Any]]:
    """The form class, its markdown description and its initial values for one step of one order."""
    version = (int, Field(default=context["version"], description=_VERSION))
    signed = (str, Field(default="", max_length=100, description=_SIGNED))
    reason = (str, Field(default="", max_length=1000, description="理由 / reason (required to reject or send back)"))
    head = (f"**{context['number']}** · {context['item_type']} · {context['category']} · "
            f"due {context['due']} (Asia/Shanghai)\n\n")
    match form:
        case "return-decision":
            units = tuple(context["units"]) or ("none",)
            model = _model("ReturnDecision", {
                "decision": (Literal["approve", "reject"], Field(description="同意退单并改派 approve and re-dispatch / 驳回 reject")),
                "new_unit": (Literal[units] | None, Field(default=context["suggested_code"] or None,
                                                          description="改派单位 / unit to re-dispatch to (approve only)")),
                "designate_lead": (bool, Field(default=False, description="首接负责：该单位不得再退单 / designated lead unit: may not return it again")),
                "reason": reason, "decided_by": signed, "order_version": version,
            })
            text = (f"{head}### 退单审核 Return request\n**{context['unit']}** asks to return this order "
                    f"(returned {context['return_count']} times so far).\n\n{quoted(context['reason'])}\n\n"
                    f"On-site evidence: {typed(context['evidence']) or 'none'} ({context['evidence_files']} files). "
                    f"Suggested unit: `{context['suggested_code'] or '-'}`.")
        case "extension-decision":
            model = _model("ExtensionDecision", {
                "decision": (Literal["approve", "reject"], Field(description="同意 approve / 驳回 reject")),
                "extension_id": (int, Field(default=context["extension_id"], description="延期申请编号 / request id")),
                "reason": reason, "decided_by": signed, "order_version": version,
            })
            text = (f"{head}### 延期审核 Extension request\n**{context['unit']}** asks to extend the deadline to "
                    f"**{context['requested_due']}**.\n\n{quoted(context['reason'])}\n\n"
                    "The deadline keeps running until approved.")
        case "reply-review":
            model = _model("ReplyReview", {
                "decision": (Literal["approve", "send_back"], Field(description="通过 approve / 退回 send back")),
                "reason": reason, "decided_by": signed, "order_version": version,
            })
            text = (f"{head}### 回复审核 Reply review\n**{context['unit']}** replied "
                    f"(citizen contacted: {context['contacted']}, solved: {context['solved']}):\n\n"
                    f"{quoted(context['reply'])}")
        case "return-visit":
            model = _model("ReturnVisit", {
                "contacted": (bool, Field(description="已联系上市民 / citizen reached")),
                "resolved": (bool, Field(description="问题已解决 / matter resolved")),
                "satisfaction": (Literal["satisfied", "basically", "unsatisfied"],
                                 Field(description="满意 / 基本满意 / 不满意 (unsatisfied sends it back for redo)")),
                "comment": (str, Field(default="", max_length=1000, description="回访记录 / notes")),
                "decided_by": signed, "order_version": version,
            })
            text = (f"{head}### 回访 Return visit\n**{context['unit']}** replied "
                    f"(says contacted: {context['contacted']}, solved: {context['solved']}):\n\n"
                    f"{quoted(context['reply'])}")
        case "case-decision":
            units = tuple(context["units"]) or ("none",)
            model = _model("CaseDecision", {
                "decision": (Literal["acknowledge", "set_deadline", "designate_lead", "close"],
                             Field(description="已阅 acknowledge / 重设期限 set a new deadline / 指定首接负责单位 "
                                               "designate the lead unit / 结案 close with a finding")),
                "unit": (Literal[units] | None, Field(default=context["unit_code"] or None,
                                                      description="首接负责单位 / lead unit to designate")),
                "new_due": (str | None, Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$",
                                              description="新期限 / new deadline, YYYY-MM-DD HH:MM (Asia/Shanghai)")),
                "finding": (str, Field(default="", max_length=2000, description="督办结论 / finding (to close)")),
                "case_id": (int, Field(default=context["case_id"], description="督办件编号 / case id")),
                "decided_by": signed, "order_version": version,
            })
            ending = ("A buck-passing case closes only with a designated lead unit, which may not return it again."
                      if context["buck_passing"] else "")
            text = (f"{head}### 督办 Supervision case: {context['case_kind']} (level {context['level']})\n"
                    f"Opened {context['opened']} on **{context['unit']}**; returned {context['return_count']} times.\n\n"
                    f"{quoted(context['reasons'] or '-')}\n\n{ending}")
        case _:
            raise ValueError(f"unknown form {form!r}")
    return model, text, {}
