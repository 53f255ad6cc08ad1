"""Who may do what: API tokens and their roles, the teacher hosts and keys a job may use, the folder
HTTP requests may read from, the Hub repositories they may push to, and per-token limits.

Everything here is decided by the operator's settings (``service/settings.py``) and applied in two
places that do not trust each other: the API refuses a request, and the worker refuses a job that
reached the database some other way. Imports the store's models for ownership and caps, never the API
or the pages.
"""
