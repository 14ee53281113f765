"""The repositories' operations, written once as coroutines for the sync and async APIs.

`base` holds a repository's state and plumbing, `runtime` the steps that differ
between the two APIs, and `reads`, `queries` and `writes` the operations. The
sync `Repository` runs them with `portchops_models.transport.drive.run_sync`; the async
repositories (`portchops_models.aio`) await them.
"""
