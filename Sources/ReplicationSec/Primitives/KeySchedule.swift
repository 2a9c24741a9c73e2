// KeySchedule: every HKDF-SHA256 derivation of ReplicationSec, with its label, in one place.
//
// Handshake (see Handshake/HandshakeProtocol.swift for the messages):
//   ck          = HKDF-Extract(salt: h_ee, ikm: X25519(e_i, e_r))
//   hs_{dir}    = HKDF-Expand(ck, "rsec1 hs " + dir + " " || h_ee, 32)           dir ∈ {i2r, r2i}
//   master      = HKDF-Extract(salt: h_final, ikm: ck)
//   ts_{dir,0}  = HKDF-Expand(master, "rsec1 ts " + dir, 32)
// Per epoch, for a traffic secret ts:
//   enc = HKDF-Expand(ts, "rsec1 enc", 32); mac = HKDF-Expand(ts, "rsec1 mac", 32)
//   ts_{e+1} = HKDF-Expand(ts_e, "rsec1 next", 32)
// Directions and purposes therefore never share a key, and a retired epoch cannot be recomputed from the next.
public import Crypto
import Foundation

/// The HKDF-SHA256 key schedule.
public enum KeySchedule {
    /// HKDF-Extract with SHA-256.
    public static func extract(salt: [UInt8], inputKeyMaterial: [UInt8]) -> SymmetricKey {
        SymmetricKey(data: Array(HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: inputKeyMaterial), salt: salt)))
    }

    /// HKDF-Expand with SHA-256.
    public static func expand(_ pseudoRandomKey: SymmetricKey, label: String, context: [UInt8] = [], length: Int = 32)
        -> SymmetricKey
    {
        HKDF<SHA256>.expand(pseudoRandomKey: pseudoRandomKey, info: Array(label.utf8) + context, outputByteCount: length)
    }

    /// The record cipher of one epoch derived from its traffic secret.
    public static func recordCipher(trafficSecret: SymmetricKey) -> RecordCipher {
        RecordCipher(
            encryptionKey: expand(trafficSecret, label: "rsec1 enc"),
            macKey: expand(trafficSecret, label: "rsec1 mac")
        )
    }

    /// The traffic secret of the next epoch; the caller drops the old one.
    public static func nextTrafficSecret(_ trafficSecret: SymmetricKey) -> SymmetricKey {
        expand(trafficSecret, label: "rsec1 next")
    }
}

extension SymmetricKey {
    /// The key bytes (for vectors and tests; never logged).
    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
