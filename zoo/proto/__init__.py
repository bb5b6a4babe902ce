"""Generated KServe v2 / Triton gRPC stubs (package `inference`); regenerate with `python protos/generate.py`.

The descriptors live in zoo's private pool (`zoo.proto._pool.POOL`), not protobuf's default one, so these stubs
import beside tritonclient's and KServe's copies of the same protocol in one process.
"""
