"""Web pages for data officers under /review: GOV.UK Design System, server-rendered.

Signed in with an API key that has the review scope: the session cookie (signed, never the
key itself) holds the client id, and every request checks the key is still live. Every form
carries a CSRF token. The pages call the same functions as the /v1 review API, so a page and
its API equivalent cannot drift.
"""

from service.pages.routes import install

__all__ = ["install"]
