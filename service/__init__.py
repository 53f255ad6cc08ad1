"""Tracemill's service: jobs in over HTTP, the queue in the database, shards out, exports made from them.

Rooms, bottom up: the shared vocabulary at this level (errors, settings, schemas, security, reasoning,
sources, presets), then ``database``, ``storage``, ``export``, ``api``; ``standin`` and ``launch`` are
equipment for the demo, tests and benches. ``cli`` alone sits above ``workers`` and may import them.
"""
