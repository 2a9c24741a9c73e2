// Descriptor validation errors: each names the line (and column) of the offending YAML node, the field path
// (`vnfd.vdus[1].cpus`) and what to change.

/// Why a VNF or network service descriptor was refused.
public struct DescriptorError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The class of error (one test per class).
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// The text is not valid YAML.
        case syntax
        /// A required field is absent.
        case missingField
        /// A field has the wrong YAML type (a list where a mapping is expected, text where a number is).
        case wrongType
        /// A field is not one this descriptor format knows (usually a typo).
        case unknownField
        /// A value is out of range or malformed (cpus ≤ 0, min > max, a port name that is not an identifier).
        case invalidValue
        /// A value is not one of the allowed words (health check type, affinity scope, …).
        case invalidEnum
        /// Two entries of one list share an id.
        case duplicateID
        /// An id refers to something the descriptor does not define (a VDU, a virtual link, a VNF, …).
        case unknownReference
        /// An instantiation level or scaling aspect asks for more (or fewer) instances than a VDU allows.
        case instanceBounds
    }

    /// The class of error.
    public var kind: Kind
    /// The 1-based line of the node the error is about (0 when unknown).
    public var line: Int
    /// The 1-based column (0 when unknown).
    public var column: Int
    /// The field path, such as `vnfd.deployment_flavours[0].instantiation_levels[1].vdu_instances.fw`.
    public var path: String
    /// What is wrong and what to do.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, line: Int, column: Int = 0, path: String, _ message: String) {
        self.kind = kind
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String { "line \(line), \(path): \(message)" }
}
