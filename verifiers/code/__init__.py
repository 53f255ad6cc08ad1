"""The code verifier: a program run against its prompt's tests in a sandbox it cannot leave or fool.

The tests' layouts, the sandbox and the harness that runs assert, call and pytest tests; imports only
``verifiers.base`` beside them.
"""
