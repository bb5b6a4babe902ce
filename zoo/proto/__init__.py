"""Generated KServe v2 / Triton gRPC stubs (package `inference`); regenerate with `python protos/generate.py`.

The messages live in protobuf package `inference`, like tritonclient's own copies, so the two
cannot be imported into one Python process (the default descriptor pool refuses duplicate symbols).
"""
