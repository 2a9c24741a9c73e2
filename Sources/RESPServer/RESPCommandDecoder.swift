// Decodes client commands (RESP multibulk arrays of bulk strings, or inline lines) with redis's hard limits.
//
// Multibulk: `*<count>\r\n` then `count` times `$<len>\r\n<len bytes>\r\n`. Inline: one line split on spaces with
// redis-cli quoting rules (`"a b"`, `'c'`, `\x41`). Limits (redis defaults): count ≤ 1,048,576, len ≤
// proto-max-bulk-len (512 MiB), a header or inline line ≤ 64 KiB; a client that has not authenticated may send at
// most 10 arguments of 16 KiB each. Empty multibulks (`*0`, `*-1`) and empty inline lines are skipped.
//
// The decoder keeps its progress inside a partly received frame, so a huge MSET arriving in many reads is scanned
// once, not once per read (redis's `multibulklen`/`bulklen` state).
public import NIOCore

/// Decodes one client command at a time from a connection's input.
public struct RESPCommandDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = CommandArguments

    /// Hard limits on what a client may send.
    public struct Limits: Sendable, Hashable {
        /// Largest bulk string accepted (`proto-max-bulk-len`).
        public var maximumBulkLength: Int
        /// Most arguments in one command.
        public var maximumArgumentCount: Int
        /// Longest inline command or header line.
        public var maximumInlineLength: Int
        /// Most bytes a connection may hold unprocessed (redis `client-query-buffer-limit`): a client over it is
        /// closed, as redis closes it. Enforced by ``RESPConnectionHandler``, not by the decoder.
        public var maximumQueryBufferLength: Int

        /// Creates limits; the defaults are redis's.
        public init(
            maximumBulkLength: Int = 512 * 1024 * 1024,
            maximumArgumentCount: Int = 1024 * 1024,
            maximumInlineLength: Int = 64 * 1024,
            maximumQueryBufferLength: Int = 1024 * 1024 * 1024
        ) {
            self.maximumBulkLength = maximumBulkLength
            self.maximumArgumentCount = maximumArgumentCount
            self.maximumInlineLength = maximumInlineLength
            self.maximumQueryBufferLength = maximumQueryBufferLength
        }

        /// For streams a node wrote itself or receives from its authenticated primary (its AOF, the replication
        /// stream): as in redis, no `proto-max-bulk-len` or argument-count limit, so what was stored under a raised
        /// limit replays whatever the limit is now. Frames are still bounded by 2 GiB (32-bit argument offsets).
        public static let trustedStream = Limits(maximumBulkLength: .max, maximumArgumentCount: .max)
    }

    /// The limits in force.
    public var limits: Limits
    /// Whether the client has authenticated; until then redis's tighter pre-auth limits apply.
    public var clientIsAuthenticated: Bool = true

    // Progress inside a partly received multibulk frame (offsets relative to the reader index).
    private var expectedArguments = 0
    private var scanOffset = 0
    private var partial = CommandArguments()

    /// Creates a decoder with the given limits.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> CommandArguments? {
        var arguments = CommandArguments()
        return try next(from: &buffer, into: &arguments) ? arguments : nil
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> CommandArguments? {
        try decode(buffer: &buffer)
    }

    /// Decodes the next command from `buffer` into `arguments` (reusing its storage).
    ///
    /// - Returns: `true` when a whole command was consumed into `arguments`; `false` when more bytes are needed.
    /// - Throws: ``RESPDecodeError`` for malformed input; the connection must reply and close.
    public mutating func next(from buffer: inout ByteBuffer, into arguments: inout CommandArguments) throws(RESPDecodeError)
        -> Bool
    {
        while buffer.readableBytes > 0 {
            if expectedArguments == 0 {
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return false }
                if first != UInt8(ascii: "*") {
                    switch try decodeInline(from: &buffer, into: &arguments) {
                    case .command: return true
                    case .needMoreBytes: return false
                    case .skipped: continue
                    }
                }
                if decodeWholeFrame(from: &buffer, into: &arguments) { return true }
                guard let (count, headerEnd) = try readNumberLine(buffer, at: 1, tooLong: .multibulkCountTooLong)
                else { return false }
                if count > limits.maximumArgumentCount { throw .invalidMultibulkLength }
                if !clientIsAuthenticated && count > 10 { throw .unauthenticatedMultibulkLength }
                if count <= 0 {
                    buffer.moveReaderIndex(forwardBy: headerEnd)
                    continue
                }
                expectedArguments = count
                scanOffset = headerEnd
                partial.removeAll()
            }
            // Scan bulk strings until the frame is complete or the bytes run out.
            while partial.count < expectedArguments {
                guard let marker = buffer.getInteger(at: buffer.readerIndex + scanOffset, as: UInt8.self) else {
                    return false
                }
                guard marker == UInt8(ascii: "$") else { throw .expectedDollar(got: marker) }
                guard let (length, lineEnd) = try readNumberLine(buffer, at: scanOffset + 1, tooLong: .bulkCountTooLong)
                else { return false }
                if length < 0 || length > limits.maximumBulkLength { throw .invalidBulkLength }
                if !clientIsAuthenticated && length > 16384 { throw .unauthenticatedBulkLength }
                let dataEnd = lineEnd + length
                // Argument positions are 32-bit: a frame that would end past 2 GiB is refused before it is buffered.
                if dataEnd + 2 > Self.maximumFrameLength { throw .invalidBulkLength }
                guard buffer.readableBytes >= dataEnd + 2 else { return false }
                // redis does not check the trailing CRLF bytes' values; it skips two bytes. So do we.
                partial.append(offset: lineEnd, length: length)
                scanOffset = dataEnd + 2
            }
            // A whole frame: hand out a slice and the spans (relative to the slice's start).
            arguments.frame = buffer.readSlice(length: scanOffset)!
            swap(&arguments.spans, &partial.spans)
            arguments.note = .none
            partial.removeAll()
            expectedArguments = 0
            scanOffset = 0
            return true
        }
        return false
    }

    /// The longest frame: arguments are located by 32-bit offsets (``ArgumentSpan``).
    private static var maximumFrameLength: Int { Int(Int32.max) }

    /// Most arguments a frame may have for ``decodeWholeFrame(from:into:)``; longer ones take the incremental path.
    private static var wholeFrameArgumentLimit: Int { 1024 }

    /// The common case, a whole multibulk frame already buffered, decoded in one pass over its bytes. Anything else
    /// (a frame not complete yet, an empty or oversized one, one over a limit, malformed input) returns `false` having
    /// consumed nothing and changed nothing but `arguments`' spans, and the incremental path then decodes or reports
    /// it, so both paths accept and refuse exactly the same input. It runs only at the start of a frame, so a large
    /// frame arriving in many reads is not scanned again on each.
    private func decodeWholeFrame(from buffer: inout ByteBuffer, into arguments: inout CommandArguments) -> Bool {
        let limits = self.limits
        let authenticated = clientIsAuthenticated
        arguments.removeAll()
        let frameLength = buffer.withUnsafeReadableBytes { raw -> Int in
            let end = raw.count
            /// `<digits>\r\n` from `start`: the number and the index past the line, or `nil`. Lines longer than an
            /// integer can be are left to the incremental path, which enforces the line limit.
            func numberLine(at start: Int) -> (Int, Int)? {
                var index = start
                let lineLimit = min(end, start + 21)
                while index < lineLimit && raw[index] != UInt8(ascii: "\r") { index += 1 }
                guard index < lineLimit && index + 1 < end,
                    let value = RESPNumberParsing.parseInteger(UnsafeRawBufferPointer(rebasing: raw[start..<index]))
                else { return nil }
                return (value, index + 2)
            }
            guard let (count, headerEnd) = numberLine(at: 1), count > 0, count <= Self.wholeFrameArgumentLimit,
                count <= limits.maximumArgumentCount, authenticated || count <= 10
            else { return 0 }
            var position = headerEnd
            for _ in 0..<count {
                guard position < end && raw[position] == UInt8(ascii: "$"),
                    let (length, lineEnd) = numberLine(at: position + 1),
                    length >= 0 && length <= limits.maximumBulkLength && (authenticated || length <= 16384),
                    end - lineEnd >= length + 2 && lineEnd + length + 2 <= Self.maximumFrameLength
                else { return 0 }
                arguments.append(offset: lineEnd, length: length)
                position = lineEnd + length + 2
            }
            return position
        }
        guard frameLength > 0 else {
            arguments.removeAll()
            return false
        }
        arguments.frame = buffer.readSlice(length: frameLength)!
        arguments.note = .none
        return true
    }

    /// Reads `<digits>\r\n` starting `offset` bytes after the reader index. Returns the number and the offset
    /// just past the line, or `nil` if the line is not complete yet.
    private func readNumberLine(_ buffer: ByteBuffer, at offset: Int, tooLong: RESPDecodeError) throws(RESPDecodeError)
        -> (Int, Int)?
    {
        let result: Result<(Int, Int)?, RESPDecodeError> = buffer.withUnsafeReadableBytes { raw in
            var index = offset
            while index < raw.count && raw[index] != UInt8(ascii: "\r") {
                index += 1
                if index - offset > limits.maximumInlineLength { return .failure(tooLong) }
            }
            guard index + 1 < raw.count else {
                return raw.count - offset > limits.maximumInlineLength ? .failure(tooLong) : .success(nil)
            }
            guard let value = RESPNumberParsing.parseInteger(UnsafeRawBufferPointer(rebasing: raw[offset..<index]))
            else {
                return .failure(tooLong == .multibulkCountTooLong ? .invalidMultibulkLength : .invalidBulkLength)
            }
            return .success((value, index + 2))
        }
        return try result.get()
    }

    private enum InlineOutcome { case command, needMoreBytes, skipped }

    /// Decodes an inline command line (telnet style). The arguments are unquoted into a fresh frame.
    private mutating func decodeInline(from buffer: inout ByteBuffer, into arguments: inout CommandArguments)
        throws(RESPDecodeError) -> InlineOutcome
    {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > limits.maximumInlineLength { throw .inlineTooLong }
            return .needMoreBytes
        }
        var lineEnd = newline
        if lineEnd > view.startIndex && view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        let line = Array(view[view.startIndex..<lineEnd])
        if line.count > limits.maximumInlineLength { throw .inlineTooLong }
        buffer.moveReaderIndex(to: newline + 1)
        guard let words = InlineSplitter.split(line) else { throw .unbalancedQuotes }
        if words.isEmpty { return .skipped }
        if !clientIsAuthenticated && words.count > 10 { throw .unauthenticatedMultibulkLength }
        arguments = CommandArguments(words)
        return .command
    }
}

/// Splits an inline command line the way redis's `sdssplitargs` does.
enum InlineSplitter {
    static func split(_ line: [UInt8]) -> [[UInt8]]? {
        var words: [[UInt8]] = []
        var index = 0
        func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 || byte == 11 || byte == 12 }
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: return byte - 48
            case 65...70: return byte - 55
            case 97...102: return byte - 87
            default: return nil
            }
        }
        while true {
            while index < line.count && isSpace(line[index]) { index += 1 }
            if index >= line.count { return words }
            var current: [UInt8] = []
            var inDoubleQuotes = false
            var inSingleQuotes = false
            var done = false
            while !done {
                if inDoubleQuotes {
                    guard index < line.count else { return nil }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\") && index + 3 < line.count && line[index + 1] == UInt8(ascii: "x"),
                        let high = hexValue(line[index + 2]), let low = hexValue(line[index + 3])
                    {
                        current.append(high << 4 | low)
                        index += 3
                    } else if byte == UInt8(ascii: "\\") && index + 1 < line.count {
                        index += 1
                        switch line[index] {
                        case UInt8(ascii: "n"): current.append(10)
                        case UInt8(ascii: "r"): current.append(13)
                        case UInt8(ascii: "t"): current.append(9)
                        case UInt8(ascii: "b"): current.append(8)
                        case UInt8(ascii: "a"): current.append(7)
                        default: current.append(line[index])
                        }
                    } else if byte == UInt8(ascii: "\"") {
                        // The closing quote must be followed by a space or the end.
                        if index + 1 < line.count && !isSpace(line[index + 1]) { return nil }
                        done = true
                    } else {
                        current.append(byte)
                    }
                } else if inSingleQuotes {
                    guard index < line.count else { return nil }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\") && index + 1 < line.count && line[index + 1] == UInt8(ascii: "'") {
                        index += 1
                        current.append(UInt8(ascii: "'"))
                    } else if byte == UInt8(ascii: "'") {
                        if index + 1 < line.count && !isSpace(line[index + 1]) { return nil }
                        done = true
                    } else {
                        current.append(byte)
                    }
                } else {
                    if index >= line.count { done = true; break }
                    let byte = line[index]
                    if isSpace(byte) {
                        done = true
                    } else if byte == UInt8(ascii: "\"") {
                        inDoubleQuotes = true
                    } else if byte == UInt8(ascii: "'") {
                        inSingleQuotes = true
                    } else {
                        current.append(byte)
                    }
                }
                if index < line.count { index += 1 }
            }
            words.append(current)
        }
    }
}
