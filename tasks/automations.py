"""Prefect automations shipped with Duban, created through the Prefect API."""

from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from duban.errors import ValidationFailed


async def apply_automation(*, text: str, source: str) -> tuple[str, UUID]:
    """Create the automation in `text`, replacing any of its name; `block:` names the notification block."""
    try:
        spec = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ValidationFailed(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or not spec.get("name"):
        raise ValidationFailed(f"{source}: expected a mapping with a name, a trigger and actions")
    async with get_client() as client:
        for action in spec.get("actions", []):
            block = action.pop("block", None)
            if block is None:
                continue
            found = [doc for doc in await client.read_block_documents() if doc.name == block]
            if not found:
                raise ValidationFailed(f"{source}: actions: no block named {block!r} on the Prefect server; "
                                       "create the notification block in the UI (Blocks) first")
            action["block_document_id"] = str(found[0].id)
        try:
            automation = AutomationCore.model_validate(spec)
        except ValidationError as exc:
            raise ValidationFailed(f"{source}: not a valid automation: {exc}") from None
        for old in await client.read_automations_by_name(automation.name):
            await client.delete_automation(old.id)
        return automation.name, await client.create_automation(automation)
