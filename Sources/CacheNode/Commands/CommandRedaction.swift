// Arguments redis never shows again once a command ran (redactClientCommandArgument): passwords in AUTH, HELLO's
// AUTH pair, MIGRATE's AUTH/AUTH2 and the values of sensitive CONFIG SET parameters. MONITOR and the slow log print
// `(redacted)` in their place.
import RESPServer

/// Which arguments of a command are secrets.
enum CommandRedaction {
    /// What is shown instead of a redacted argument.
    static let placeholder = "(redacted)"

    /// Configuration parameters whose values are secrets (redis's SENSITIVE_CONFIG).
    static let sensitiveParameters: Set<String> = ["requirepass", "masterauth", "masteruser"]

    /// The positions of `arguments` (a `commandName` command) that must not be shown.
    static func redactedPositions(_ arguments: CommandArguments, commandName: String) -> Set<Int> {
        switch commandName {
        case "auth":
            return Set(1..<max(1, arguments.count))
        case "hello", "migrate":
            var positions = Set<Int>()
            var index = 1
            while index < arguments.count {
                if arguments.matches(index, "auth") {
                    let count = commandName == "hello" ? 2 : 1
                    positions.formUnion((index + 1)..<min(arguments.count, index + 1 + count))
                    index += 1 + count
                } else if commandName == "migrate" && arguments.matches(index, "auth2") {
                    positions.formUnion((index + 1)..<min(arguments.count, index + 3))
                    index += 3
                } else {
                    index += 1
                }
            }
            return positions
        case "config":
            // CONFIG SET name value [name value ...]: every sensitive value, even when the command failed.
            guard arguments.count >= 4, arguments.matches(1, "set") else { return [] }
            var positions = Set<Int>()
            var index = 2
            while index + 1 < arguments.count {
                if sensitiveParameters.contains(arguments.lowercased(index)) { positions.insert(index + 1) }
                index += 2
            }
            return positions
        default:
            return []
        }
    }
}
