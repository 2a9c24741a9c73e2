// Fixed-point text for doubles (`%.Nf`), formatted with the C library's vsnprintf. Foundation's String(format:)
// goes through CoreFoundation's formatter and its shared locale state; commands on two event loops formatting at
// once (GEOSEARCH WITHDIST, INFO) must not depend on that being safe to enter concurrently.
import Foundation

enum NumberText {
    /// `value` with `decimals` digits after the point, as `printf("%.<decimals>f")` writes it.
    static func fixed(_ value: Double, decimals: Int) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer -> String in
            let format = "%.\(decimals)f"
            let length = Int(withVaList([value]) { vsnprintf(buffer.baseAddress!, 512, format, $0) })
            let bytes = UnsafeRawBufferPointer(start: buffer.baseAddress!, count: min(max(length, 0), 511))
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
