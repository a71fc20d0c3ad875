"""The admin's body preview in a real browser: the creator sees the Markdown as members will see
the article (the same computed styles as on the article page, from the site's own style sheets),
the admin around it keeps its own look, and the Content-Security-Policy refuses nothing."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import ContentFactory, UserFactory

from .conftest import close_context

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BODY = """## A heading

A paragraph with [a link](https://example.com/) and `inline code`.

> A quotation.

```
a block of code
```

- one
- two
"""

RECORD = """document.addEventListener("securitypolicyviolation", (e) => {
  (window.__csp = window.__csp || []).push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});"""

PROPERTIES = [
    "fontFamily",
    "fontSize",
    "fontWeight",
    "lineHeight",
    "color",
    "marginTop",
    "marginBottom",
    "backgroundColor",
    "borderLeftColor",
    "borderLeftWidth",
    "paddingLeft",
]
ELEMENTS = ["h2", "p", "a", "p code", "blockquote", "pre", "ul", "li"]

STYLES = """([root, selectors, properties]) => {
  const scope = root ? document.querySelector(root).shadowRoot : document;
  return Object.fromEntries(selectors.map((selector) => {
    const element = scope.querySelector(".prose " + selector);
    if (!element) return [selector, null];
    const style = getComputedStyle(element);
    return [selector, Object.fromEntries(properties.map((name) => [name, style[name]]))];
  }));
}"""


def test_the_preview_looks_like_the_article_page(browser, live_server):
    creator = UserFactory(is_staff=True, is_superuser=True)  # with the second factor staff need
    item = ContentFactory(body=BODY, author=creator)
    client = Client()
    client.force_login(creator)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_init_script(RECORD)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(live_server.url + item.get_absolute_url())
        on_site = page.evaluate(STYLES, [None, ELEMENTS, PROPERTIES])
        assert all(on_site.values()), on_site

        page.goto(live_server.url + reverse("admin:content_content_change", args=[item.pk]))
        admin_look = page.evaluate("getComputedStyle(document.body).fontFamily")
        page.click("#md-preview-button")
        page.wait_for_selector("#md-preview .prose h2")
        in_preview = page.evaluate(STYLES, ["#md-preview", ELEMENTS, PROPERTIES])
        for selector in ELEMENTS:
            assert in_preview[selector] == on_site[selector], selector
        # The site's style sheets stay inside the preview.
        assert page.evaluate("getComputedStyle(document.body).fontFamily") == admin_look
        assert not page.evaluate("[...document.styleSheets].some((s) => (s.href || '').includes('app.css'))")
        # What the server sanitizes stays sanitized: a script in the body never runs or lands.
        page.fill("#id_body", "Hi <script>window.__ran = 1</script><img src=x onerror='window.__ran = 2'>")
        page.click("#md-preview-button")
        page.wait_for_function(
            "() => document.querySelector('#md-preview').shadowRoot.querySelector('.prose').textContent.includes('Hi')"
        )
        assert page.evaluate("window.__ran") is None
        assert (
            page.evaluate("document.querySelector('#md-preview').shadowRoot.querySelector('script')") is None
        )
        assert page.evaluate("window.__csp || []") == []
    finally:
        close_context(context)
