"""The JSON API (``/api/v1``): the flows the pages call, answered in JSON.

``urls`` is its table of routes; ``guard`` what every request passes first; ``replies`` the
shapes of its answers; one module of routes per part of the account. ``openapi.json`` is its
document.
"""
