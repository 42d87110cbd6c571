"""Short links: every http(s) URL of an outbound body becomes `{short base}/{code}` at acceptance, with
click tracking and app deep links (README "Links"; docs/links.md).

Layout (like sms/tenant_webhooks):
  models.py     LinkSettings (per org: default, branded domain, retention, blocklist), AppRoute (deep links),
                Link (one per send × URL: the code), LinkClick (one per request: a click or a preview)
  detection.py  finding URLs in a body (linkify-it-py, with the contract's trailing-punctuation rule)
  agents.py     who is asking: preview fetchers and scanners (crawlerdetect + a few known ones), platform family
  services.py   the rules: shortening at acceptance (the one call from sms/services/sends.py), the code
                cache, the click queue and its ingestion (clicks vs previews, `sms.link_clicked` once per send)
  redirect.py   the public redirect (a middleware: outside /api/v1, no auth, no DB on a cache hit)
  selectors.py  reads: the links list, per-send links, stats
  api.py        GET /api/v1/orgs/{org}/sms/links
  tasks.py      Celery: drain the click queue
  admin.py      the dashboard pages (org link settings, app routes, links; the send page's links inline)
"""
