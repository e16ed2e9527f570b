"""Development only: the mail viewer. GET /dev/mail shows the last mails the `console` backend "sent" (the
privacy center's login codes among them), newest first, as plain text.

Outside PRIVACY_ENV=development it answers 404, exactly as a path that does not exist (production cannot
run the console backend at all). It keeps no more than core.mail.KEPT_MAILS, in the memory of the worker
that sent them: with several workers, each shows its own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from app.runtime import Runtime

router = APIRouter(include_in_schema=False)


def render(runtime: Runtime) -> str:
    settings = runtime.settings
    if settings.mail_backend != "console":
        return f"Mail goes out by {settings.mail_backend} (PRIVACY_MAIL_BACKEND): nothing is kept here.\n"
    kept = list(reversed(runtime.mailer.recent))
    if not kept:
        return "No mail yet. The console backend keeps the last few mails of this process here.\n"
    blocks = [
        f"Date: {sent.sent_at.isoformat(timespec='seconds').replace('+00:00', 'Z')}\n"
        f"To: {sent.mail.to}\nSubject: {sent.mail.subject}\n\n{sent.mail.body.rstrip()}\n"
        for sent in kept
    ]
    return ("\n" + "-" * 72 + "\n\n").join(blocks)


@router.get("/dev/mail")
async def dev_mail(request: Request) -> PlainTextResponse:
    runtime: Runtime = request.app.state.runtime
    if runtime.settings.env != "development":
        raise HTTPException(status_code=404)
    return PlainTextResponse(render(runtime), headers={"Cache-Control": "no-store"})
