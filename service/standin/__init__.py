"""The stand-in teacher: a deterministic OpenAI-compatible server for tests, the demo and the benches.

Test and demo equipment, not the service: it imports nothing of Tracemill but its own modules.
"""
