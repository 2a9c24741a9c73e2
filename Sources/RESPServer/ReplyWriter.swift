// Encodes replies in RESP2 or RESP3 into one output buffer per connection. Every reply type is written
// through here, so the protocol differences (maps vs flat arrays, `_` vs `$-1`, push vs array) live in one place.
public import NIOCore

/// Writes RESP replies into a buffer, in the protocol version the connection negotiated.
///
/// Commands never format RESP themselves: they call these methods, so a command's reply is right under both
/// RESP2 and RESP3. User-supplied text in errors and simple strings has `\r` and `\n` replaced by spaces, so a
/// client cannot inject replies.
public struct ReplyWriter: Sendable {
    /// The bytes written so far and not yet handed to the channel.
    public var buffer: ByteBuffer
    /// The protocol this connection speaks; `HELLO` changes it.
    public var protocolVersion: RESPVersion

    /// Creates a writer over `buffer` speaking `protocolVersion`.
    public init(buffer: ByteBuffer, protocolVersion: RESPVersion = .v2) {
        self.buffer = buffer
        self.protocolVersion = protocolVersion
    }

    // MARK: simple values

    /// `+OK`
    @inlinable public mutating func ok() { buffer.writeStaticString("+OK\r\n") }

    /// A simple string (`+text`). Line breaks in `text` are replaced by spaces.
    public mutating func simpleString(_ text: String) {
        buffer.writeInteger(UInt8(ascii: "+"))
        writeSanitized(text)
        buffer.writeStaticString("\r\n")
    }

    /// An array of simple strings, one per line (what every `<COMMAND> HELP` answers).
    public mutating func simpleStringLines(_ lines: [String]) {
        arrayHeader(lines.count)
        for line in lines { simpleString(line) }
    }

    /// An error reply: `-CODE message`. `message` should not repeat the code; line breaks are replaced by spaces.
    public mutating func error(code: String, message: String) {
        buffer.writeInteger(UInt8(ascii: "-"))
        writeSanitized(code)
        if !message.isEmpty {
            buffer.writeInteger(UInt8(ascii: " "))
            writeSanitized(message)
        }
        buffer.writeStaticString("\r\n")
    }

    /// An integer reply (`:n`).
    @inlinable public mutating func integer(_ value: Int) {
        line(marker: UInt8(ascii: ":"), value)
    }

    /// Writes `<marker><decimal value>\r\n` with one buffer access (integers and aggregate headers).
    @inlinable
    public mutating func line(marker: UInt8, _ value: Int) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out in
            out[0] = marker
            var magnitude = value.magnitude
            var position = 1
            if value < 0 {
                out[1] = UInt8(ascii: "-")
                position = 2
            }
            var digits = 1
            var probe = magnitude / 10
            while probe > 0 { digits += 1; probe /= 10 }
            var index = position + digits - 1
            repeat {
                out[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
                magnitude /= 10
                index -= 1
            } while magnitude > 0
            position += digits
            out[position] = 13
            out[position + 1] = 10
            return position + 2
        }
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 the integers 1 and 0.
    public mutating func boolean(_ value: Bool) {
        if protocolVersion == .v3 {
            buffer.writeStaticString(value ? "#t\r\n" : "#f\r\n")
        } else {
            buffer.writeStaticString(value ? ":1\r\n" : ":0\r\n")
        }
    }

    /// A double: RESP3 `,value`, RESP2 a bulk string, formatted as redis formats scores.
    public mutating func double(_ value: Double) {
        let text = RESPNumberFormat.double(value)
        if protocolVersion == .v3 {
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeString(text)
            buffer.writeStaticString("\r\n")
        } else {
            bulk(text)
        }
    }

    /// The null reply: RESP3 `_`, RESP2 the null bulk string `$-1`.
    @inlinable public mutating func null() {
        if protocolVersion == .v3 {
            buffer.writeStaticString("_\r\n")
        } else {
            buffer.writeStaticString("$-1\r\n")
        }
    }

    /// A null where RESP2 uses the null array (`*-1`), e.g. BLPOP timing out or EXEC aborted by WATCH.
    public mutating func nullArray() {
        if protocolVersion == .v3 {
            buffer.writeStaticString("_\r\n")
        } else {
            buffer.writeStaticString("*-1\r\n")
        }
    }

    // MARK: bulk strings

    /// A bulk string from raw bytes, written with one buffer access (`$len\r\n`, bytes, `\r\n`).
    @inlinable public mutating func bulk(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count + 25) { out in
            var position = 0
            out[0] = UInt8(ascii: "$")
            position = 1
            if count < 10 {
                out[1] = UInt8(truncatingIfNeeded: count) &+ 48
                position = 2
            } else {
                var digits = 0
                var remaining = count
                while remaining > 0 { digits += 1; remaining /= 10 }
                remaining = count
                var index = position + digits - 1
                while remaining > 0 {
                    out[index] = UInt8(truncatingIfNeeded: remaining % 10) &+ 48
                    remaining /= 10
                    index -= 1
                }
                position += digits
            }
            out[position] = 13
            out[position + 1] = 10
            position += 2
            if count > 0 {
                (out.baseAddress! + position).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            position += count
            out[position] = 13
            out[position + 1] = 10
            return position + 2
        }
    }

    /// A bulk string from a byte sequence.
    @inlinable public mutating func bulk<Bytes: Sequence>(bytes: Bytes) where Bytes.Element == UInt8 {
        let count = bytes.underestimatedCount
        var copy = ByteBuffer()
        if count == 0 {
            copy.writeBytes(bytes)
            bulkHeader(copy.readableBytes)
            buffer.writeBuffer(&copy)
        } else {
            // Sequences with an exact count (arrays, views) go straight into the buffer.
            bulkHeader(count)
            buffer.writeBytes(bytes)
        }
        buffer.writeStaticString("\r\n")
    }

    /// A bulk string from a buffer (its readable bytes).
    @inlinable public mutating func bulk(_ value: ByteBuffer) {
        bulkHeader(value.readableBytes)
        buffer.writeImmutableBuffer(value)
        buffer.writeStaticString("\r\n")
    }

    /// A bulk string from UTF-8 text.
    public mutating func bulk(_ text: String) {
        bulkHeader(text.utf8.count)
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
    }

    /// A bulk string holding the decimal form of `value` (how redis returns INCRBYFLOAT results and such).
    public mutating func bulk(decimal value: Int) {
        var digits = ByteBuffer()
        digits.reserveCapacity(20)
        Self.appendDecimal(value, to: &digits)
        bulk(digits)
    }

    /// A verbatim string (RESP3 `=len\r\ntxt:…`), sent as a bulk string under RESP2 (INFO, CLIENT INFO).
    public mutating func verbatim(_ text: String, format: String = "txt") {
        if protocolVersion == .v3 {
            buffer.writeInteger(UInt8(ascii: "="))
            writeDecimal(text.utf8.count + 4)
            buffer.writeStaticString("\r\n")
            buffer.writeString(format)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(text)
            buffer.writeStaticString("\r\n")
        } else {
            bulk(text)
        }
    }

    /// The header of a bulk string of `count` bytes; the caller writes the bytes and `\r\n`.
    @inlinable public mutating func bulkHeader(_ count: Int) {
        line(marker: UInt8(ascii: "$"), count)
    }

    // MARK: aggregates

    /// An array of `count` elements; the caller writes the elements.
    @inlinable public mutating func arrayHeader(_ count: Int) {
        line(marker: UInt8(ascii: "*"), count)
    }

    /// A map of `count` pairs: RESP3 `%count`, RESP2 a flat array of `2 * count` elements.
    public mutating func mapHeader(_ count: Int) {
        if protocolVersion == .v3 {
            line(marker: UInt8(ascii: "%"), count)
        } else {
            arrayHeader(count * 2)
        }
    }

    /// A set of `count` members: RESP3 `~count`, RESP2 an array.
    public mutating func setHeader(_ count: Int) {
        if protocolVersion == .v3 {
            line(marker: UInt8(ascii: "~"), count)
        } else {
            arrayHeader(count)
        }
    }

    /// An out-of-band push (pub/sub messages): RESP3 `>count`, RESP2 an array.
    public mutating func pushHeader(_ count: Int) {
        if protocolVersion == .v3 {
            line(marker: UInt8(ascii: ">"), count)
        } else {
            arrayHeader(count)
        }
    }

    /// Appends bytes that are already RESP-encoded (replies captured earlier, e.g. for EXEC).
    public mutating func raw(_ encoded: ByteBuffer) {
        var encoded = encoded
        buffer.writeBuffer(&encoded)
    }

    // MARK: helpers

    @usableFromInline
    mutating func writeDecimal(_ value: Int) {
        Self.appendDecimal(value, to: &buffer)
    }

    /// Writes the ASCII decimal form of `value` without going through `String`.
    @inlinable
    public static func appendDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        if value >= 0 && value < 10 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits and a sign
        let count = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                index -= 1
                raw[index] = UInt8(ascii: "-")
            }
            return raw.count - index
        }
        withUnsafeBytes(of: &digits) { raw -> Void in
            _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...]))
        }
    }

    private mutating func writeSanitized(_ text: String) {
        for byte in text.utf8 {
            buffer.writeInteger(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
        }
    }
}

/// How numbers are printed in replies, matching redis so clients parse what they expect.
public enum RESPNumberFormat {
    /// Formats a double the way redis formats scores and INCRBYFLOAT results: `inf`/`-inf`, integers without a
    /// fraction, otherwise the shortest representation that round-trips (`%.17g` trimmed).
    public static func double(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == value.rounded(), abs(value) < 1e17 {
            return String(Int64(value))
        }
        return "\(value)"
    }
}
