"""Gatehouse's pages; ``blueprint`` maps their URLs. Internal.

A view parses its form, calls one flow and renders the outcome: views import forms, access
helpers and flows, nothing else (the health and dev-mailbox pages read their one service).
"""
