// One decoded client command: the frame's bytes plus where each argument lies in them (zero-copy).
public import NIOCore

/// The position of one argument inside a command frame.
public struct ArgumentSpan: Sendable, Hashable {
    /// Offset of the argument's first byte from the frame's reader index.
    public var offset: Int32
    /// The argument's length in bytes.
    public var length: Int32
}

/// What a dispatcher noted about a command while its pipelined batch was offered to
/// ``CommandDispatcher/prefetch(_:count:session:)``, read back when the command runs, so that work done for the batch
/// is not done twice. The decoder clears it for every command it decodes.
public struct DispatchNote: Sendable, Hashable {
    /// E.g. the command's index in the dispatcher's command table; -1 for none.
    public var command: Int32
    /// E.g. where the command's key sits in what the dispatcher kept from the batch; -1 for none.
    public var key: Int32

    /// Creates a note.
    public init(command: Int32, key: Int32) {
        self.command = command
        self.key = key
    }

    /// Nothing noted.
    public static let none = DispatchNote(command: -1, key: -1)
}

/// A client command as a list of binary-safe arguments, `arguments[0]` being the command name.
///
/// The arguments point into the bytes the client sent (a slice of the connection's input buffer); nothing is
/// copied until a command stores a value. Accessors mirror redis's parsing rules (`string2ll`, `strtold`).
public struct CommandArguments: Sendable, Equatable {
    /// The frame the arguments point into.
    public var frame: ByteBuffer
    @usableFromInline var spans: [ArgumentSpan]
    /// The dispatcher's note from prefetching this command's batch (``DispatchNote/none`` otherwise). Not part of
    /// the command: equality ignores it.
    public var note = DispatchNote.none

    /// An empty argument list backed by an empty frame.
    public init() {
        self.frame = ByteBuffer()
        self.spans = []
        self.spans.reserveCapacity(8)
    }

    /// Builds arguments from separate byte strings (used by inline commands, tests and internal callers).
    public init<S: Sequence>(_ arguments: S) where S.Element: Sequence, S.Element.Element == UInt8 {
        var frame = ByteBuffer()
        var spans: [ArgumentSpan] = []
        for argument in arguments {
            let start = frame.writerIndex
            frame.writeBytes(argument)
            spans.append(ArgumentSpan(offset: Int32(start), length: Int32(frame.writerIndex - start)))
        }
        self.frame = frame
        self.spans = spans
    }

    /// Builds arguments from strings (UTF-8).
    public init(strings: [String]) {
        self.init(strings.map { Array($0.utf8) })
    }

    /// The number of arguments, including the command name.
    @inlinable public var count: Int { spans.count }

    /// Calls `body` with the bytes of argument `index`.
    @inlinable
    public func withBytes<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let span = spans[index]
        let outcome: Swift.Result<Result, Failure> = frame.withUnsafeReadableBytes { raw in
            Swift.Result { () throws(Failure) -> Result in
                try body(UnsafeRawBufferPointer(rebasing: raw[Int(span.offset)..<Int(span.offset + span.length)]))
            }
        }
        return try outcome.get()
    }

    /// The length in bytes of argument `index`.
    @inlinable public func length(_ index: Int) -> Int { Int(spans[index].length) }

    /// Argument `index` as a buffer sharing the frame's storage.
    public func buffer(_ index: Int) -> ByteBuffer {
        let span = spans[index]
        return frame.getSlice(at: frame.readerIndex + Int(span.offset), length: Int(span.length))!
    }

    /// Argument `index` as bytes (copied).
    public func bytes(_ index: Int) -> [UInt8] {
        withBytes(index) { Array($0) }
    }

    /// Argument `index` decoded as UTF-8 (invalid sequences repaired), for names, options and messages.
    public func string(_ index: Int) -> String {
        withBytes(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether argument `index` equals `word` ignoring ASCII case (`word` must be lowercase ASCII).
    @inlinable
    public func matches(_ index: Int, _ word: StaticString) -> Bool {
        withBytes(index) { bytes in
            guard bytes.count == word.utf8CodeUnitCount else { return false }
            let expected = word.utf8Start
            for position in 0..<bytes.count {
                var byte = bytes[position]
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
                if byte != expected[position] { return false }
            }
            return true
        }
    }

    /// Argument `index` as lowercase ASCII text (for option and subcommand names).
    public func lowercased(_ index: Int) -> String {
        withBytes(index) { bytes in
            String(decoding: bytes.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
        }
    }

    /// Argument `index` as a 64-bit integer with redis's strict rules (no spaces, no `+`, no leading zeros
    /// except `0` itself, no overflow); `nil` if it is not one.
    @inlinable
    public func integer(_ index: Int) -> Int? {
        withBytes(index) { RESPNumberParsing.parseInteger($0) }
    }

    /// Argument `index` as a double the way redis reads scores and increments: decimal or exponent forms,
    /// `inf`/`+inf`/`-inf`; `nil` for NaN, spaces or trailing garbage.
    public func double(_ index: Int) -> Double? {
        withBytes(index) { RESPNumberParsing.parseDouble($0) }
    }

    /// Two argument lists are equal when they hold the same bytes, wherever those bytes live.
    public static func == (lhs: CommandArguments, rhs: CommandArguments) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where lhs.withBytes(index, { a in rhs.withBytes(index) { b in !a.elementsEqual(b) } }) {
            return false
        }
        return true
    }

    /// Removes all arguments, keeping the span storage for reuse.
    @inlinable
    public mutating func removeAll() {
        spans.removeAll(keepingCapacity: true)
    }

    @usableFromInline
    mutating func append(offset: Int, length: Int) {
        spans.append(ArgumentSpan(offset: Int32(truncatingIfNeeded: offset), length: Int32(truncatingIfNeeded: length)))
    }

    /// Returns these arguments with `index` dropped and the rest shifted (used for prefixes such as ASKING).
    public func dropping(first count: Int) -> CommandArguments {
        var copy = self
        copy.spans.removeFirst(count)
        copy.note = .none
        return copy
    }
}

/// Number parsing with redis's rules.
public enum RESPNumberParsing {
    /// Parses a signed 64-bit decimal integer exactly as redis's `string2ll` does.
    @inlinable
    public static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        if count == 0 || count > 20 { return nil }
        if count == 1 {
            let digit = bytes[0] &- 48
            return digit < 10 ? Int(digit) : nil
        }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            index = 1
        }
        // First digit must be 1-9 (no leading zeros, no "-0").
        let first = bytes[index] &- 48
        guard first >= 1 && first <= 9 else { return nil }
        var magnitude = UInt64(first)
        index += 1
        while index < count {
            let digit = bytes[index] &- 48
            guard digit < 10 else { return nil }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            if overflow1 || overflow2 { return nil }
            magnitude = sum
            index += 1
        }
        if negative {
            if magnitude > UInt64(Int64.max) + 1 { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int.min : -Int(magnitude)
        }
        if magnitude > UInt64(Int64.max) { return nil }
        return Int(magnitude)
    }

    /// Parses a double as redis does for scores (`strtod` accepting `inf`; rejecting NaN and whitespace).
    public static func parseDouble(_ bytes: UnsafeRawBufferPointer) -> Double? {
        if bytes.isEmpty || bytes.count > 5000 { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        switch text.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
        guard let first = bytes.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t"),
            let last = bytes.last, last != UInt8(ascii: " "), last != UInt8(ascii: "\t")
        else { return nil }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"),
                UInt8(ascii: "e"), UInt8(ascii: "E"):
                continue
            default:
                return nil
            }
        }
        guard let value = Double(text), !value.isNaN else { return nil }
        return value
    }
}
