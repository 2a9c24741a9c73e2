// libFuzzer entry point for the RESP command decoder: each input is decoded with several limit settings, in one
// buffer and in input-derived chunks, and any broken invariant (see RESPDecoderInvariants, shared with the
// FuzzRegressionTests of RESPServerTests) stops the run so libFuzzer saves the input as a crash artifact.
// Built by fuzz/run.sh with `-sanitize=fuzzer,address -parse-as-library`.
import Glibc
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

/// libFuzzer's driver (`int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*)(const uint8_t *, size_t))`).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links executables with their own `main`, so libFuzzer's is not used; this one starts the driver.
@main
enum FuzzRESPDecoderMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = runFuzzerDriver(&argc, &argv) { start, count in fuzzRESPDecoder(start, count) }
        exit(status)
    }
}
