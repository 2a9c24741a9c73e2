// SwiftPM needs one source file per C target; the hint itself is the static inline function in the header.
#include "CMemoryPrefetch.h"
