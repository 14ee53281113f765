"""Tools for tests, demos and benchmarks: embedded engines and the fault proxy.

Nothing in the runtime library imports this package (a test checks it): a service
talking to DynamoDB never loads moto, dynalite helpers or the proxy.
"""
