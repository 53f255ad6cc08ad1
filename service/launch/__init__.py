"""Start processes on loopback and wait until they answer: Tracemill's own, and a real vLLM on SmolLM2.

Equipment for the demo, the tests and the benches; imports only service's shared vocabulary.
"""
