"""``tracemill``: the commands, and the one room above both the service and the workers.

It starts servers and workers, so it alone of service may import ``workers``.
"""
