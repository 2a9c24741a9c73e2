// Known-answer tests: NIST SP 800-38A AES-256-CTR, RFC 4231 HMAC-SHA256 and RFC 5869 HKDF-SHA256.
import Crypto
import Testing
@testable import ReplicationSec

struct KnownAnswerTests {
    @Test func nistSP800_38A_F55_CTR_AES256() {
        let key = SymmetricKey(data: [UInt8](hex: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"))
        let counter = [UInt8](hex: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        let plaintext = [UInt8](hex: "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            + "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
        let ciphertext = [UInt8](hex: "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
            + "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")
        #expect(RecordCipher.aesCTR(plaintext, key: key, counterBlock: counter) == ciphertext)
        #expect(RecordCipher.aesCTR(ciphertext, key: key, counterBlock: counter) == plaintext)  // F.5.6 decrypt
    }

    @Test(arguments: [
        ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(1...25), [UInt8](repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xaa, count: 131),
         Array(("This is a test using a larger than block-size key and a larger than block-size data. "
             + "The key needs to be hashed before being used by the HMAC algorithm.").utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ] as [([UInt8], [UInt8], String)])
    func rfc4231HMACSHA256(key: [UInt8], data: [UInt8], expected: String) {
        let mac = Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
        #expect(mac.hex == expected)
    }

    @Test func recordCipherTagIsHMACOverConcatenatedParts() {
        let macKey = SymmetricKey(data: [UInt8](repeating: 0x42, count: 32))
        let cipher = RecordCipher(encryptionKey: SymmetricKey(size: .bits256), macKey: macKey)
        let expected = Array(HMAC<SHA256>.authenticationCode(for: Array("headerbody".utf8), using: macKey))
        #expect(cipher.tag(Array("header".utf8), Array("body".utf8)) == expected)
        #expect(cipher.isValidTag(expected, over: Array("head".utf8), Array("erbody".utf8)))
        #expect(!cipher.isValidTag(expected, over: Array("headerbodY".utf8)))
    }

    @Test func rfc4231TruncatedTestCase5() {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("Test With Truncation".utf8), using: SymmetricKey(data: [UInt8](repeating: 0x0c, count: 20)))
        #expect(Array(Array(mac).prefix(16)).hex == "a3b6167473100ee06e0c796c2955552b")
    }

    @Test(arguments: [
        ([UInt8](repeating: 0x0b, count: 22), Array(0x00...0x0c), Array(0xf0...0xf9), 42,
         "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        (Array(0x00...0x4f), Array(0x60...0xaf), Array(0xb0...0xff), 82,
         "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
        ([UInt8](repeating: 0x0b, count: 22), [], [], 42,
         "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
    ] as [([UInt8], [UInt8], [UInt8], Int, String, String)])
    func rfc5869HKDFSHA256(ikm: [UInt8], salt: [UInt8], info: [UInt8], length: Int, prk: String, okm: String) {
        let pseudoRandomKey = KeySchedule.extract(salt: salt, inputKeyMaterial: ikm)
        #expect(pseudoRandomKey.bytes.hex == prk)
        let infoLabel = String(decoding: info, as: UTF8.self)
        // Labels are UTF-8; RFC info bytes are not, so expand through HKDF directly with the same PRK.
        let output = HKDF<SHA256>.expand(pseudoRandomKey: pseudoRandomKey, info: info, outputByteCount: length)
        #expect(output.bytes.hex == okm)
        if info.allSatisfy({ $0 < 0x80 }) {
            #expect(KeySchedule.expand(pseudoRandomKey, label: infoLabel, length: length).bytes.hex == okm)
        }
    }

    @Test func counterBlockIsCounterBigEndianThenZeros() {
        #expect(RecordCipher.counterBlock(recordCounter: 0x0102030405060708).hex == "01020304050607080000000000000000")
    }

    @Test func constantTimeEqualsComparesEveryByte() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
    }
}
