"""Shards: committed samples written to Parquet, all or nothing, and where those files live.

Imports the database and service's shared vocabulary; never api, export, cli or workers.
"""
