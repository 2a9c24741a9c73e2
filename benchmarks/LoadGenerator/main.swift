// cache-bench: a load generator on libhiredis + libevent (placeholder until the generator lands).
import CHiredis
print("cache-bench: hiredis \(HIREDIS_MAJOR).\(HIREDIS_MINOR)")
