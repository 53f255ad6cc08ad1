"""HTTP: the ``/v1`` routes and the browse pages, thin over the database, storage and export.

Imports every room of service below it; never cli or workers.
"""
