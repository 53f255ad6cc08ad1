"""Start processes and wait until they answer: Tracemill's own and a real vLLM on SmolLM2 on loopback,
and a cluster's GPU nodes through Slurm (``slurm.py``, behind ``tracemill slurm``).

Equipment for the demo, the tests and the benches; imports only service's shared vocabulary.
"""
