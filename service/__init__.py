"""Tracemill's service: HTTP API, queue, shards and export around a database."""
