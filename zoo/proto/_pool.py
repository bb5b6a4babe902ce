"""zoo's own protobuf descriptor pool: the `inference` package registered apart from tritonclient's and KServe's copies."""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
