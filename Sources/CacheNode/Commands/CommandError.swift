// Errors a command replies with. Each carries the RESP error code clients match on (ERR, WRONGTYPE, NOAUTH…)
// and a message saying what failed; the reply writer strips line breaks from user text.

/// A failed command, sent to the client as `-CODE message`.
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error code clients match on (`ERR`, `WRONGTYPE`, `NOAUTH`, `OOM`, `EXECABORT`…).
    public let code: String
    /// What failed, in redis's wording where clients or tests depend on it.
    public let message: String

    /// Creates an error with an explicit code.
    public init(code: String = "ERR", _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code) \(message)" }

    public static let wrongType = CommandError(
        code: "WRONGTYPE", "Operation against a key holding the wrong kind of value")
    public static let syntax = CommandError("syntax error")
    public static let notInteger = CommandError("value is not an integer or out of range")
    public static let notFloat = CommandError("value is not a valid float")
    public static let overflow = CommandError("increment or decrement would overflow")
    public static let noSuchKey = CommandError("no such key")
    public static let indexOutOfRange = CommandError("index out of range")
    public static let noAuth = CommandError(code: "NOAUTH", "Authentication required.")
    public static let wrongPass = CommandError(
        code: "WRONGPASS", "invalid username-password pair or user is disabled.")
    public static let outOfMemory = CommandError(code: "OOM", "command not allowed when used memory > 'maxmemory'.")
    public static let execAbort = CommandError(
        code: "EXECABORT", "Transaction discarded because of previous errors.")
    public static let nestedMulti = CommandError("MULTI calls can not be nested")
    public static let execWithoutMulti = CommandError("EXEC without MULTI")
    public static let discardWithoutMulti = CommandError("DISCARD without MULTI")
    public static let watchInMulti = CommandError("WATCH inside MULTI is not allowed")
    public static let invalidExpireTime = CommandError("invalid expire time in 'set' command")
    public static let invalidDatabase = CommandError("DB index is out of range")
    public static let readOnlyReplica = CommandError(code: "READONLY", "You can't write against a read only replica.")
    public static let stringTooLong = CommandError("string exceeds maximum allowed size (proto-max-bulk-len)")

    /// `-ERR wrong number of arguments for '<name>' command`.
    public static func wrongArity(_ name: String) -> CommandError {
        CommandError("wrong number of arguments for '\(name)' command")
    }

    /// `-ERR invalid expire time in '<name>' command`.
    public static func invalidExpire(_ name: String) -> CommandError {
        CommandError("invalid expire time in '\(name)' command")
    }

    /// `-ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <NAME> HELP.` (redis
    /// addReplySubcommandSyntaxError).
    public static func subcommandSyntax(_ subcommand: String, of command: String) -> CommandError {
        CommandError("unknown subcommand or wrong number of arguments for '\(subcommand.prefix(128))'. Try \(command.uppercased()) HELP.")
    }

    /// `-ERR unknown subcommand '<sub>'. Try <NAME> HELP.`
    public static func unknownSubcommand(_ subcommand: String, of command: String) -> CommandError {
        CommandError("unknown subcommand '\(subcommand.prefix(128))'. Try \(command.uppercased()) HELP.")
    }
}
