"""The gateway's own pages: the login form and the refusal page, in Chinese and English."""

from html import escape

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1f2937}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}}.error{{color:#b91c1c;border:1px solid #fca5a5;padding:.6rem;
background:#fef2f2}}</style></head><body>{body}</body></html>"""


def login_page(*, csrf: str, next_url: str, error: str = "") -> str:
    """The login form; `error` explains a refused login or an ended session."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""<h1>督办 Duban · 登录 Sign in</h1>
<p>Prefect 界面需以个人账号登录；您的决定将以您的姓名记录。 Decisions you submit are recorded under your name.</p>
{message}<form method="post" action="/login">
<input type="hidden" name="csrf" value="{escape(csrf)}"><input type="hidden" name="next" value="{escape(next_url)}">
<label for="name">用户名 Name</label><input id="name" name="name" autocomplete="username" required maxlength="100">
<label for="password">密码 Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="200">
<button type="submit">登录 Sign in</button></form>"""
    return _PAGE.format(title="登录 Sign in · Duban", body=body)


def refused_page(*, message: str) -> str:
    """A refusal a person sees in the browser, with a way back."""
    body = f'<h1>不允许 Not allowed</h1><p class="error" role="alert">{escape(message)}</p><p><a href="/">返回 Back</a></p>'
    return _PAGE.format(title="Not allowed · Duban", body=body)
