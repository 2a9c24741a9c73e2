// cache-node entry point (placeholder).
import CacheNode
print("cache-node")
