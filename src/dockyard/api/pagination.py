"""The `Link` header that points at a listing's next page, on `/v2` and `/acr/v1` alike.

ACR's shape: `</acr/v1/_catalog?last=<item>&n=<n>&orderby=>; rel="next"`. The Azure SDK
takes the text between the leading `<` and the first `>` and requests it verbatim; the
az CLI splits it on `?`, `&` and `=` and needs every parameter as `k=v`, so `orderby` is
always there, empty when the listing is by name."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from dockyard.core.listings import Page


def next_link(path: str, page: Page, orderby: str = "", **query: str) -> dict[str, str]:
    """The header for the page after `page`, keeping the listing's order and filters;
    nothing on the last page."""
    if page.next_last is None:
        return {}
    params = {"last": page.next_last, "n": str(page.n), "orderby": orderby, **query}
    return {"Link": f'<{path}?{urlencode(params, safe="/", quote_via=quote)}>; rel="next"'}
