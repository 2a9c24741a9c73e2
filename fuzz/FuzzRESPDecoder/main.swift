// libFuzzer entry point for the RESP command decoder: each input is decoded with several limit settings, in one
// buffer and in input-derived chunks, and any broken invariant (see RESPDecoderInvariants, shared with the
// FuzzRegressionTests of RESPServerTests) stops the run so libFuzzer saves the input as a crash artifact.
// Built by fuzz/run.sh with `-sanitize=fuzzer,address -parse-as-library`.
import RESPServer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPDecoder(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    let violations = RESPDecoderInvariants.violations(for: input)
    if !violations.isEmpty {
        fatalError("RESP decoder invariant broken:\n" + violations.joined(separator: "\n"))
    }
    return 0
}

/// Starts libFuzzer (see LibFuzzerDriver.swift).
@main
enum FuzzRESPDecoderMain {
    static func main() { runLibFuzzer { start, count in fuzzRESPDecoder(start, count) } }
}
