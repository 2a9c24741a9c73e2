// RecordLayer: sealing and opening of data and close records with counters, epochs, replay checks and limits.
//
// Record frame (all integers big-endian):
//   type u8 (0x17 data, 0x15 close) | length u32 (bytes after this field) | epoch u32 | counter u64
//   | ciphertext (AES-256-CTR, counter block = counter || 0^64) | tag (HMAC-SHA256 over every preceding byte)
// The counter runs across epochs for the whole session and is never reused; the epoch selects the key.
// Opening checks epoch, limits and replay first (cheap), then the tag in constant time, and only then
// moves the replay window, installs a new epoch, and decrypts.
public import Crypto
public import Foundation
public import NIOCore

/// Kinds of frames on the wire.
public enum FrameType: UInt8, Sendable {
    case clientHello = 0x01
    case serverHello = 0x02
    case clientFinish = 0x03
    case close = 0x15
    case data = 0x17
}

/// How the transport orders frames, which decides how counters are checked.
public enum TransportOrdering: UInt8, Sendable, Hashable {
    /// TCP and other streams: the counter must be exactly the next one.
    case strictInOrder = 0
    /// Reordering transports: a sliding replay window accepts counters once each.
    case replayWindow = 1
}

/// Layout constants of record frames.
public enum RecordFormat {
    /// type + length.
    public static let frameHeaderLength = 5
    /// type + length + epoch + counter.
    public static let recordHeaderLength = 17
    /// Smallest valid record frame (empty payload).
    public static let minimumRecordLength = recordHeaderLength + RecordCipher.tagLength
}

/// What an opened record carried.
public enum OpenedRecord: Sendable, Hashable {
    /// Application bytes.
    case data([UInt8])
    /// The peer's authenticated close: everything it sent has arrived.
    case close
}

/// The sending half of a session's record layer for one direction.
public struct RecordSealer: Sendable {
    private var trafficSecret: SymmetricKey
    private var cipher: RecordCipher
    private let policy: RekeyPolicy
    /// Current key epoch.
    public private(set) var epoch: UInt32 = 0
    /// Counter the next record will carry.
    public private(set) var nextCounter: UInt64
    private var recordsUnderKey: UInt64 = 0
    private var keyInstalledAt: NIODeadline
    private var closed = false

    /// Creates a sealer from the direction's epoch-0 traffic secret.
    public init(trafficSecret: SymmetricKey, policy: RekeyPolicy, now: NIODeadline, firstCounter: UInt64 = 0) {
        self.trafficSecret = trafficSecret
        self.cipher = KeySchedule.recordCipher(trafficSecret: trafficSecret)
        self.policy = policy
        self.keyInstalledAt = now
        self.nextCounter = firstCounter
    }

    /// Seals `payload` into a complete frame, rekeying first when the policy says so.
    /// - Throws: `.counterExhausted` when the counter or epoch space is used up, `.sessionClosed` after `close`.
    public mutating func seal(_ payload: [UInt8], now: NIODeadline) throws(SecureChannelError) -> [UInt8] {
        try seal(payload, type: .data, now: now)
    }

    /// Seals the authenticated close record; afterwards the sealer refuses to seal.
    public mutating func sealClose(now: NIODeadline) throws(SecureChannelError) -> [UInt8] {
        let frame = try seal([], type: .close, now: now)
        closed = true
        return frame
    }

    private mutating func seal(_ payload: [UInt8], type: FrameType, now: NIODeadline) throws(SecureChannelError)
        -> [UInt8]
    {
        var output = ByteBuffer()
        var failure: SecureChannelError?
        payload.withUnsafeBytes { bytes in
            do throws(SecureChannelError) { try seal(bytes, type: type, now: now, into: &output) } catch { failure = error }
        }
        if let failure { throw failure }
        return Array(output.readableBytesView)
    }

    /// Seals `payload` as one data record appended to `output` (the allocation-light path the handler uses).
    public mutating func seal(_ payload: UnsafeRawBufferPointer, now: NIODeadline, into output: inout ByteBuffer)
        throws(SecureChannelError)
    {
        try seal(payload, type: .data, now: now, into: &output)
    }

    private mutating func seal(
        _ payload: UnsafeRawBufferPointer, type: FrameType, now: NIODeadline, into output: inout ByteBuffer
    ) throws(SecureChannelError) {
        guard !closed else { throw .sessionClosed }
        guard nextCounter < UInt64.max else { throw .counterExhausted }
        if recordsUnderKey >= policy.rekeyAfterMessages || now - keyInstalledAt >= policy.rekeyAfterTime {
            guard epoch < UInt32.max else { throw .counterExhausted }
            trafficSecret = KeySchedule.nextTrafficSecret(trafficSecret)
            cipher = KeySchedule.recordCipher(trafficSecret: trafficSecret)
            epoch += 1
            recordsUnderKey = 0
            keyInstalledAt = now
        }
        let counter = nextCounter
        let start = output.writerIndex
        output.writeInteger(type.rawValue)
        output.writeInteger(UInt32(payload.count + 12 + RecordCipher.tagLength))
        output.writeInteger(epoch)
        output.writeInteger(counter)
        output.writeBytes(cipher.applyKeystream(payload, recordCounter: counter))
        let tag = output.withUnsafeReadableBytes { bytes in
            cipher.tag(UnsafeRawBufferPointer(rebasing: bytes[(start - output.readerIndex)...]))
        }
        tag.withUnsafeBytes { _ = output.writeBytes($0) }
        nextCounter += 1
        recordsUnderKey += 1
    }

    static func header(type: FrameType, payloadLength: Int, epoch: UInt32, counter: UInt64) -> [UInt8] {
        var header = [UInt8]()
        header.reserveCapacity(RecordFormat.recordHeaderLength)
        header.append(type.rawValue)
        header.appendBigEndian(UInt32(payloadLength + 12 + RecordCipher.tagLength))
        header.appendBigEndian(epoch)
        header.appendBigEndian(counter)
        return header
    }
}

/// The receiving half of a session's record layer for one direction.
public struct RecordOpener: Sendable {
    private var trafficSecret: SymmetricKey
    private var cipher: RecordCipher
    private var nextEpochCipher: RecordCipher?
    private let policy: RekeyPolicy
    private let ordering: TransportOrdering
    /// Current key epoch.
    public private(set) var epoch: UInt32 = 0
    private var recordsUnderKey: UInt64 = 0
    private var keyInstalledAt: NIODeadline
    private var expectedCounter: UInt64
    private var window = ReplayWindow()
    private var closed = false

    /// Creates an opener from the direction's epoch-0 traffic secret.
    public init(
        trafficSecret: SymmetricKey,
        policy: RekeyPolicy,
        ordering: TransportOrdering,
        now: NIODeadline,
        firstCounter: UInt64 = 0
    ) {
        self.trafficSecret = trafficSecret
        self.cipher = KeySchedule.recordCipher(trafficSecret: trafficSecret)
        self.policy = policy
        self.ordering = ordering
        self.keyInstalledAt = now
        self.expectedCounter = firstCounter
    }

    /// Authenticates and decrypts one complete record frame.
    /// Nothing is returned, and no state changes, unless the tag verifies.
    public mutating func open(_ frame: [UInt8], now: NIODeadline) throws(SecureChannelError) -> OpenedRecord {
        var result: Result<Data?, SecureChannelError> = .success(nil)
        frame.withUnsafeBytes { bytes in
            do throws(SecureChannelError) { result = .success(try open(bytes, now: now)) } catch { result = .failure(error) }
        }
        return try result.get().map { .data(Array($0)) } ?? .close
    }

    /// Authenticates and decrypts one frame held in a ByteBuffer (the handler's path).
    /// - Returns: the plaintext, or `nil` for the authenticated close record.
    public mutating func open(_ frame: ByteBuffer, now: NIODeadline) throws(SecureChannelError) -> Data? {
        var result: Result<Data?, SecureChannelError> = .success(nil)
        frame.withUnsafeReadableBytes { bytes in
            do throws(SecureChannelError) { result = .success(try open(bytes, now: now)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    private mutating func open(_ frame: UnsafeRawBufferPointer, now: NIODeadline) throws(SecureChannelError) -> Data? {
        guard !closed else { throw .sessionClosed }
        guard frame.count >= RecordFormat.minimumRecordLength else { throw .malformedFrame }
        guard let type = FrameType(rawValue: frame[0]), type == .data || type == .close else {
            throw .unexpectedFrame
        }
        guard Int(Self.read(UInt32.self, frame, at: 1)) == frame.count - RecordFormat.frameHeaderLength else {
            throw .malformedFrame
        }
        let recordEpoch = Self.read(UInt32.self, frame, at: 5)
        let counter = Self.read(UInt64.self, frame, at: 9)

        // Epoch and limits.
        let isNextEpoch: Bool
        if recordEpoch == epoch {
            isNextEpoch = false
            guard recordsUnderKey < policy.rejectAfterMessages else { throw .keyUsageLimitExceeded }
            guard now - keyInstalledAt <= policy.rejectAfterTime else { throw .keyExpired }
        } else if epoch < UInt32.max, recordEpoch == epoch + 1 {
            isNextEpoch = true
        } else if recordEpoch < epoch {
            throw .staleEpoch
        } else {
            throw .unknownEpoch
        }

        // Counter, before any MAC work.
        switch ordering {
        case .strictInOrder:
            if counter < expectedCounter { throw .replayedRecord }
            if counter > expectedCounter { throw .recordOutOfOrder }
        case .replayWindow:
            guard window.isAcceptable(counter) else { throw .replayedRecord }
        }

        // Tag, in constant time.
        let key: RecordCipher
        if isNextEpoch {
            let next = nextEpochCipher ?? KeySchedule.recordCipher(trafficSecret: KeySchedule.nextTrafficSecret(trafficSecret))
            nextEpochCipher = next
            key = next
        } else {
            key = cipher
        }
        let tagStart = frame.count - RecordCipher.tagLength
        guard key.isValidTag(
            UnsafeRawBufferPointer(rebasing: frame[tagStart...]), over: UnsafeRawBufferPointer(rebasing: frame[..<tagStart]))
        else { throw .badRecordTag }

        // Commit: window, epoch, counters; the retired key is dropped (and zeroed by SymmetricKey).
        switch ordering {
        case .strictInOrder: expectedCounter = counter &+ 1
        case .replayWindow: window.markReceived(counter)
        }
        if isNextEpoch {
            trafficSecret = KeySchedule.nextTrafficSecret(trafficSecret)
            cipher = key
            nextEpochCipher = nil
            epoch += 1
            recordsUnderKey = 0
            keyInstalledAt = now
        }
        recordsUnderKey += 1
        if type == .close {
            guard tagStart == RecordFormat.recordHeaderLength else { throw .malformedFrame }
            closed = true
            return nil
        }
        return key.applyKeystream(
            UnsafeRawBufferPointer(rebasing: frame[RecordFormat.recordHeaderLength..<tagStart]), recordCounter: counter)
    }

    private static func read<I: FixedWidthInteger>(_: I.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> I {
        var value = I.zero
        for index in 0..<(I.bitWidth / 8) { value = value << 8 | I(bytes[offset + index]) }
        return value
    }
}

extension [UInt8] {
    mutating func appendBigEndian<I: FixedWidthInteger>(_ value: I) {
        var bigEndian = value.bigEndian
        Swift.withUnsafeBytes(of: &bigEndian) { append(contentsOf: $0) }
    }

    func readBigEndian<I: FixedWidthInteger>(_: I.Type, at offset: Int) -> I {
        var value = I.zero
        for index in 0..<(I.bitWidth / 8) { value = value << 8 | I(self[offset + index]) }
        return value
    }
}
