// Re-checks the RESP decoder fuzzer's invariants without libFuzzer: every file in `FuzzCases/` (seeds and crash
// artifacts kept as regression cases) plus hand-written adversarial inputs. `RESPDecoderInvariants` below is also
// compiled into the libFuzzer target (`fuzz/`, through a symlink, with `-D FUZZING`), so both check the same rules.
import NIOCore
import RESPServer

/// The properties the command decoder must keep for any input, whatever the chunking and limits.
///
/// For each configuration (default limits; small limits; not authenticated) the input is decoded once in one
/// buffer and once in chunks whose sizes come from the input's bytes (deterministic), with NIO's buffer compaction
/// in between. Checked: no crash; the decoder never consumes more than it was given; every command has at least
/// one argument, respects the configured limits and re-encodes to a RESP multibulk that decodes back to the same
/// arguments; errors are `RESPDecodeError`s that `ReplyWriter` renders as one `-ERR Protocol error: …` line; and
/// the chunked run agrees with the one-buffer run (same commands, same error) except where a length limit is hit
/// at a read boundary.
enum RESPDecoderInvariants {
    /// One way of configuring the decoder.
    struct Configuration: CustomStringConvertible {
        var name: String
        var limits: RESPCommandDecoder.Limits
        var authenticated: Bool
        var description: String { name }
    }

    static let configurations: [Configuration] = [
        Configuration(name: "default limits", limits: .init(), authenticated: true),
        Configuration(
            name: "small limits",
            limits: .init(maximumBulkLength: 32, maximumArgumentCount: 6, maximumInlineLength: 48),
            authenticated: true
        ),
        Configuration(name: "not authenticated", limits: .init(), authenticated: false),
    ]

    /// What one run decoded.
    struct Run {
        var commands: [[[UInt8]]] = []
        var error: RESPDecodeError?
        var consumed = 0
    }

    /// Returns the broken invariants for `input` (empty when all hold).
    static func violations(for input: [UInt8]) -> [String] {
        var found: [String] = []
        for configuration in configurations {
            let whole = decodeInOneBuffer(input, configuration, &found)
            let chunked = decodeInChunks(input, configuration, &found)
            for run in [whole, chunked] {
                check(run, input: input, configuration, &found)
            }
            compare(whole: whole, chunked: chunked, configuration, &found)
        }
        return found
    }

    /// The errors that depend on where a read ended: a line is refused as too long when the bytes received so far
    /// exceed the limit before its line break arrives, counting a `\r` whose `\n` is still to come (redis does the
    /// same), so a chunked run may stop there while the one-buffer run goes on.
    private static let readBoundaryErrors: Set<RESPDecodeError> = [.inlineTooLong, .multibulkCountTooLong, .bulkCountTooLong]

    private static func decodeInOneBuffer(_ input: [UInt8], _ configuration: Configuration, _ found: inout [String]) -> Run {
        var decoder = RESPCommandDecoder(limits: configuration.limits)
        decoder.clientIsAuthenticated = configuration.authenticated
        var buffer = ByteBuffer(bytes: input)
        var run = Run()
        var arguments = CommandArguments()
        do {
            while try decoder.next(from: &buffer, into: &arguments) {
                run.commands.append(words(arguments))
                if run.commands.count > input.count + 1 {
                    found.append("[\(configuration)] more commands than input bytes: the decoder does not advance")
                    break
                }
            }
        } catch {
            run.error = error
        }
        run.consumed = buffer.readerIndex
        if buffer.readerIndex > input.count || buffer.writerIndex != input.count {
            found.append("[\(configuration)] one buffer: reader \(buffer.readerIndex), writer \(buffer.writerIndex), input \(input.count)")
        }
        return run
    }

    /// Feeds the input in chunks through the `NIOSingleStepByteToMessageDecoder` entry points, as NIO does.
    private static func decodeInChunks(_ input: [UInt8], _ configuration: Configuration, _ found: inout [String]) -> Run {
        var decoder = RESPCommandDecoder(limits: configuration.limits)
        decoder.clientIsAuthenticated = configuration.authenticated
        var random = SplitMix64(seed: fnv1a(input))
        var buffer = ByteBuffer()
        var run = Run()
        var fed = 0
        var discarded = 0
        func drain(last: Bool) -> Bool {
            do {
                while true {
                    let decoded = last ? try decoder.decodeLast(buffer: &buffer, seenEOF: true) : try decoder.decode(buffer: &buffer)
                    guard let decoded else { return true }
                    run.commands.append(words(decoded))
                    if run.commands.count > input.count + 1 {
                        found.append("[\(configuration)] chunked: more commands than input bytes")
                        return false
                    }
                }
            } catch let error as RESPDecodeError {
                run.error = error
            } catch {
                found.append("[\(configuration)] chunked: error that is not a RESPDecodeError: \(error)")
            }
            return false
        }
        var open = true
        while open && fed < input.count {
            let size = min(input.count - fed, random.chunkSize())
            buffer.writeBytes(input[fed..<fed + size])
            fed += size
            open = drain(last: false)
            if discarded + buffer.readerIndex > fed {
                found.append("[\(configuration)] chunked: consumed \(discarded + buffer.readerIndex) of \(fed) bytes fed")
            }
            // NIO compacts its cumulation buffer now and then; the decoder's offsets must survive that.
            if random.next() % 3 == 0 {
                discarded += buffer.readerIndex
                buffer.discardReadBytes()
            }
        }
        if open { _ = drain(last: true) }
        run.consumed = discarded + buffer.readerIndex
        if run.consumed > input.count {
            found.append("[\(configuration)] chunked: consumed \(run.consumed) of \(input.count) bytes")
        }
        return run
    }

    private static func check(_ run: Run, input: [UInt8], _ configuration: Configuration, _ found: inout [String]) {
        let limits = configuration.limits
        let maximumCount = configuration.authenticated ? max(limits.maximumArgumentCount, limits.maximumInlineLength) : 10
        let bulkLimit = configuration.authenticated ? limits.maximumBulkLength : min(limits.maximumBulkLength, 16384)
        let maximumLength = max(bulkLimit, limits.maximumInlineLength)
        for command in run.commands {
            if command.isEmpty { found.append("[\(configuration)] a command without arguments was returned") }
            if command.count > maximumCount {
                found.append("[\(configuration)] \(command.count) arguments exceed the limit \(maximumCount)")
            }
            if let long = command.first(where: { $0.count > maximumLength }) {
                found.append("[\(configuration)] an argument of \(long.count) bytes exceeds the limit \(maximumLength)")
            }
            // Round trip through RESP with default limits.
            var decoder = RESPCommandDecoder()
            var encoded = encodeMultibulk(command)
            let encodedCount = encoded.readableBytes
            var arguments = CommandArguments()
            do {
                let complete = try decoder.next(from: &encoded, into: &arguments)
                if !complete || words(arguments) != command || encoded.readerIndex != encodedCount {
                    found.append("[\(configuration)] re-encoded command \(command) decoded as \(words(arguments))")
                }
            } catch {
                found.append("[\(configuration)] re-encoded command \(command) was refused: \(error)")
            }
        }
        if let error = run.error {
            // The reply the connection sends before closing must be exactly one simple-error line.
            var reply = ReplyWriter(buffer: ByteBuffer())
            reply.error(code: "ERR", message: "Protocol error: \(error)")
            let line = Array(reply.buffer.readableBytesView)
            let breaks = line.indices.filter { line[$0] == 13 || line[$0] == 10 }
            if line.first != UInt8(ascii: "-") || breaks != [line.count - 2, line.count - 1] || error.description.isEmpty {
                found.append("[\(configuration)] error \(error) renders as \(String(decoding: line, as: UTF8.self).debugDescription)")
            }
        } else if run.consumed > input.count {
            found.append("[\(configuration)] consumed past the input")
        }
    }

    private static func compare(whole: Run, chunked: Run, _ configuration: Configuration, _ found: inout [String]) {
        let shorter = min(whole.commands.count, chunked.commands.count)
        if whole.commands.prefix(shorter) != chunked.commands.prefix(shorter) {
            found.append("[\(configuration)] chunked decoding returned different commands")
            return
        }
        switch (whole.error, chunked.error) {
        case (nil, nil):
            if whole.commands.count != chunked.commands.count || whole.consumed != chunked.consumed {
                found.append(
                    "[\(configuration)] chunked decoding: \(chunked.commands.count) commands / \(chunked.consumed) bytes, "
                        + "one buffer: \(whole.commands.count) / \(whole.consumed)"
                )
            }
        case (let a?, let b?) where a == b && whole.commands.count == chunked.commands.count:
            break
        case (let a, let b):
            // Only a chunked run stopped early at a read boundary may disagree with the one-buffer run.
            let stoppedAtBoundary = b.map(readBoundaryErrors.contains) ?? false
            if !stoppedAtBoundary || chunked.commands.count > whole.commands.count {
                found.append(
                    "[\(configuration)] one buffer: \(whole.commands.count) commands then \(a.map(String.init(describing:)) ?? "no error"); "
                        + "chunked: \(chunked.commands.count) commands then \(b.map(String.init(describing:)) ?? "no error")"
                )
            }
        }
    }

    static func words(_ arguments: CommandArguments) -> [[UInt8]] {
        (0..<arguments.count).map { arguments.bytes($0) }
    }

    static func encodeMultibulk(_ command: [[UInt8]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("*\(command.count)\r\n")
        for argument in command {
            buffer.writeString("$\(argument.count)\r\n")
            buffer.writeBytes(argument)
            buffer.writeString("\r\n")
        }
        return buffer
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }

    /// A small deterministic generator (SplitMix64), so a failing input always fails the same way.
    struct SplitMix64 {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        /// Mostly tiny reads (1–8 bytes, the interesting boundaries), sometimes larger ones.
        mutating func chunkSize() -> Int {
            let ceilings = [1, 2, 8, 8, 64, 4096]
            let ceiling = ceilings[Int(next() % UInt64(ceilings.count))]
            return 1 + Int(next() % UInt64(ceiling))
        }
    }
}

#if !FUZZING
import Foundation
import Testing

struct FuzzRegressionTests {
    /// The corpus folder next to this file: seeds written by `fuzz/run.sh` and every crash it ever found.
    static let casesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzCases")

    static func caseNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: casesFolder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted()
    }

    @Test func corpusIsPresent() {
        #expect(Self.caseNames().count >= 10, "FuzzCases/ should hold the seed corpus and regression cases")
    }

    @Test(arguments: caseNames())
    func corpusCaseKeepsTheInvariants(_ name: String) throws {
        let data = try Data(contentsOf: Self.casesFolder.appendingPathComponent(name))
        #expect(RESPDecoderInvariants.violations(for: Array(data)) == [], "case \(name)")
    }

    /// Hand-written adversarial inputs (some from redis's tests/unit/protocol.tcl).
    static let adversarialInputs: [[UInt8]] = [
        Array("*3000000000\r\n".utf8),
        Array("*-9223372036854775808\r\n".utf8),
        Array("*9223372036854775807\r\n".utf8),
        Array("*1\r\n$9223372036854775807\r\n".utf8),
        Array("*1\r\n$-9223372036854775808\r\n".utf8),
        Array("*1\r\n$2147483647\r\nx\r\n".utf8),
        Array("*2\r\n$3\r\nGET\r\n$1\r\n".utf8),
        Array("*1\r\n$0\r\n\r\n*1\r\n$0\r\n\r\n".utf8),
        Array("*1\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n".utf8),  // redis skips the two bytes after a bulk unread
        Array("*\r\n".utf8),
        Array("$3\r\nfoo\r\n".utf8),
        Array("*1\r\n$\r\n".utf8),
        Array("*1\r\n$01\r\na\r\n".utf8),
        Array("*01\r\n$1\r\na\r\n".utf8),
        Array("*+1\r\n$1\r\na\r\n".utf8),
        Array("*1\r\n$ 1\r\na\r\n".utf8),
        Array("*1\r\r\n".utf8),
        Array("*1\n$1\na\n".utf8),
        Array("\r\n\r\n\n\n   \t\r\n*0\r\n*-1\r\nPING\r\n".utf8),
        Array("set k \"a\\x4\"\r\n".utf8),
        Array("set k \"\\x\"\r\n".utf8),
        Array("set k '\\'\r\n".utf8),
        Array("set k \"\\\"\r\n".utf8),
        Array("\"\"\r\n".utf8),
        Array("''\r\n".utf8),
        Array("a 'b\r\n".utf8),
        Array("a\0b\r\n".utf8),
        [0xFF, 0xFE, 0x00, 0x2A, 0x0D, 0x0A],
        Array("*11\r\n".utf8) + Array(repeating: Array("$1\r\na\r\n".utf8), count: 11).flatMap { $0 },
        Array(("a " + String(repeating: "b ", count: 20) + "\r\n").utf8),
        Array(("*1\r\n$" + String(repeating: "9", count: 100) + "\r\n").utf8),
        Array(("*" + String(repeating: "1", count: 70_000)).utf8),
        Array(("*1\r\n$" + String(repeating: "1", count: 70_000)).utf8),
        Array(String(repeating: "x", count: 65_536).utf8) + [13, 10],
        Array(String(repeating: "x", count: 65_537).utf8),
        Array("*2\r\n$5\r\nHELLO\r\n$16385\r\n".utf8) + Array(repeating: 0x61, count: 16385) + [13, 10],
    ]

    @Test(arguments: 0..<adversarialInputs.count)
    func adversarialInputKeepsTheInvariants(_ index: Int) {
        #expect(RESPDecoderInvariants.violations(for: Self.adversarialInputs[index]) == [])
    }

    /// The round trip the invariants use keeps binary arguments (CR, LF, NUL, empty) intact.
    @Test func roundTripKeepsBinaryArguments() throws {
        let encoded = RESPDecoderInvariants.encodeMultibulk([Array("SET".utf8), [0, 13, 10], []])
        var decoder = RESPCommandDecoder()
        var buffer = encoded
        var arguments = CommandArguments()
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(RESPDecoderInvariants.words(arguments) == [Array("SET".utf8), [0, 13, 10], []])
        #expect(buffer.readableBytes == 0)
    }

    /// Decoding results the invariants rely on, asserted directly.
    @Test func skippedTrailingBytesAndLimitsBehaveLikeRedis() throws {
        var decoder = RESPCommandDecoder(limits: .init(maximumBulkLength: 32, maximumArgumentCount: 6, maximumInlineLength: 48))
        var buffer = ByteBuffer(string: "*1\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n*7\r\n")
        var arguments = CommandArguments()
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(arguments.string(0) == "abc")
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(arguments.string(0) == "PING")
        #expect(throws: RESPDecodeError.invalidMultibulkLength) { try decoder.next(from: &buffer, into: &arguments) }
    }
}
#endif
