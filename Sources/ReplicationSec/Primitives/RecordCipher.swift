// RecordCipher: AES-256-CTR + HMAC-SHA256 encrypt-then-MAC for one direction and one key epoch.
// Wraps swift-crypto's underscored `AES._CTR` so the rest of the module never touches it directly.
public import Crypto
import Foundation
import _CryptoExtras

/// The keys of one direction in one epoch: an AES-256 key for confidentiality and an HMAC-SHA256 key for integrity.
///
/// The keys live in swift-crypto `SymmetricKey`s, whose storage is zeroed when released: dropping a
/// `RecordCipher` wipes its keys.
public struct RecordCipher: Sendable {
    /// Length of the HMAC-SHA256 tag appended to every record.
    public static let tagLength = 32

    let encryptionKey: SymmetricKey
    let macKey: SymmetricKey
    /// HMAC with the key already absorbed (inner and outer pads); copied per record (copy-on-write), which saves
    /// two SHA-256 compressions per record.
    private let macTemplate: HMAC<SHA256>

    /// Creates a cipher from raw keys.
    /// - Parameters:
    ///   - encryptionKey: 32 bytes for AES-256-CTR.
    ///   - macKey: 32 bytes for HMAC-SHA256.
    public init(encryptionKey: SymmetricKey, macKey: SymmetricKey) {
        precondition(encryptionKey.bitCount == 256 && macKey.bitCount == 256, "RecordCipher needs 256-bit keys")
        self.encryptionKey = encryptionKey
        self.macKey = macKey
        self.macTemplate = HMAC<SHA256>(key: macKey)
    }

    /// The 16-byte initial counter block for a record: the 64-bit record counter big-endian, then eight zero
    /// bytes. AES-CTR increments the whole block as a 128-bit big-endian integer, so blocks of one record use
    /// the low 64 bits and never reach another record's counter.
    public static func counterBlock(recordCounter: UInt64) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 { block[index] = UInt8(truncatingIfNeeded: recordCounter >> (56 - 8 * index)) }
        return block
    }

    /// Applies AES-256-CTR keystream for `recordCounter` to `bytes` (encryption and decryption are the same).
    public func applyKeystream(_ bytes: [UInt8], recordCounter: UInt64) -> [UInt8] {
        Self.aesCTR(bytes, key: encryptionKey, counterBlock: Self.counterBlock(recordCounter: recordCounter))
    }

    /// Applies the keystream to contiguous bytes without copying the input.
    func applyKeystream(_ bytes: UnsafeRawBufferPointer, recordCounter: UInt64) -> Data {
        if bytes.isEmpty { return Data() }
        do {
            let nonce = try AES._CTR.Nonce(nonceBytes: Self.counterBlock(recordCounter: recordCounter))
            return try AES._CTR.encrypt(bytes, using: encryptionKey, nonce: nonce)
        } catch {
            fatalError("AES-CTR failed with a valid key and nonce: \(error)")
        }
    }

    /// HMAC-SHA256 over contiguous bytes.
    func tag(_ bytes: UnsafeRawBufferPointer) -> HashedAuthenticationCode<SHA256> {
        var mac = macTemplate
        mac.update(data: bytes)
        return mac.finalize()
    }

    /// Checks `tag` (32 bytes) against HMAC-SHA256 over `bytes` in constant time.
    func isValidTag(_ tag: UnsafeRawBufferPointer, over bytes: UnsafeRawBufferPointer) -> Bool {
        let expected = self.tag(bytes)
        guard tag.count == Self.tagLength else { return false }
        return expected.withUnsafeBytes { expectedBytes in
            var difference: UInt8 = 0
            for index in 0..<Self.tagLength { difference |= expectedBytes[index] ^ tag[index] }
            return difference == 0
        }
    }

    /// AES-CTR with an explicit 16-byte initial counter block (used by the known-answer tests too).
    public static func aesCTR(_ bytes: [UInt8], key: SymmetricKey, counterBlock: [UInt8]) -> [UInt8] {
        if bytes.isEmpty { return [] }
        do {
            let nonce = try AES._CTR.Nonce(nonceBytes: counterBlock)
            return Array(try AES._CTR.encrypt(bytes, using: key, nonce: nonce))
        } catch {
            // Only a wrong key or nonce size can fail, both fixed by construction here.
            fatalError("AES-CTR failed with a valid key and nonce: \(error)")
        }
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    public func tag(_ parts: [UInt8]...) -> [UInt8] {
        var mac = macTemplate
        for part in parts { mac.update(data: part) }
        return Array(mac.finalize())
    }

    /// Checks `tag` against HMAC-SHA256 over `parts` in constant time.
    public func isValidTag(_ tag: [UInt8], over parts: [UInt8]...) -> Bool {
        var mac = macTemplate
        for part in parts { mac.update(data: part) }
        return constantTimeEquals(Array(mac.finalize()), tag)
    }
}

/// Compares two byte strings without an early exit on the first difference.
@inline(never)
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
