"""Clients of the outside parties money flows through (the bank gateway), and what they share:
the request and callback signature (``signing``) and the HTTP transport (``http``)."""
