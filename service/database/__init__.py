"""The database: tables, the task queue with its fenced leases, jobs and the samples they committed.

Imports service's shared vocabulary (errors, settings, schemas, security) and ``verifiers.base``; never api,
storage, export, cli or workers.
"""
