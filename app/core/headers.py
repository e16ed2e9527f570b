"""Security headers, from one place: what every response carries (core.middleware adds it), and the content
security policies of the pages, each built here on the same base, so that no page can forget framing.

docs/security.md ("Input, headers and output") says why each is what it is."""

from __future__ import annotations

# Every response: never guess a type from the content (a JSON body sniffed as HTML, say).
NOSNIFF = "nosniff"
# Every response: a URL of this service (the unsubscribe page's carries its token) goes to no other origin,
# while the service's own forms keep their Origin header.
REFERRER_POLICY = "same-origin"
# Every HTML page, for browsers that predate `frame-ancestors`.
FRAME_OPTIONS = "DENY"

# The base of every page's policy: nothing loads unless a page allows it, forms post only to this service, no
# other site may frame a page (clickjacking), and no <base> may move relative URLs.
_DEFAULT = {"default-src": "'none'"}
_CLOSING = {"form-action": "'self'", "frame-ancestors": "'none'", "base-uri": "'none'"}


def content_security_policy(**directives: str | None) -> str:
    """A page's policy: the base, with `directives` added or replaced (`style_src="'self'"` is `style-src`;
    None drops a base directive). `frame-ancestors 'none'` stays whatever is asked."""
    asked = {name.replace("_", "-"): value for name, value in directives.items()}
    merged = _DEFAULT | {k: v for k, v in asked.items() if k not in _CLOSING} | _CLOSING
    merged |= {k: v for k, v in asked.items() if k in _CLOSING} | {"frame-ancestors": "'none'"}
    return "; ".join(f"{name} {value}" for name, value in merged.items() if value is not None)


# A page that brings no policy of its own (the unsubscribe page, the register extract as HTML): no script at
# all; its styles are inline.
PAGE_POLICY = content_security_policy(style_src="'unsafe-inline'", img_src="'self'")
