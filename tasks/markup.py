"""Text someone typed, made safe for the markdown the Prefect UI renders (form descriptions, artifact cells)."""

import html
import re

# The UI's sanitiser removes scripts, but keeps images (fetched from anywhere by the supervisor's browser)
# and links of any scheme, and the typed text would not read as typed: so it is shown as plain text.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def typed(text: object) -> str:
    """Markdown that renders exactly this text: no HTML, images, links or formatting of the writer's."""
    return _MARKUP.sub(r"\\\1", html.escape(str(text), quote=False))


def quoted(text: object) -> str:
    """The text as a markdown quote, every line of it."""
    return "\n".join(f"> {typed(line)}" for line in str(text).splitlines() or [""])


def typed_rows(rows: list[dict[str, object]]) -> list[dict[str, str]]:
    """A table artifact's rows with every cell shown as the text it holds (see `typed`)."""
    return [{key: typed(value) for key, value in row.items()} for row in rows]
