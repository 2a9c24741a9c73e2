// Rewrites commands whose effect depends on when they run into the absolute form replicas apply (redis
// propagates SET EX as SET PXAT, EXPIRE as PEXPIREAT, SETEX as SET PXAT, GETEX as PEXPIREAT/PERSIST): a replica
// applying the stream later, or a replica promoted and replayed, must reach the same expiry times. Commands whose
// result depends on randomness or floating point (SPOP, INCRBYFLOAT) or on blocking (BLPOP) propagate through
// `CommandContext.propagate` from their handlers instead, since only they know what they did.
public import RESPServer

/// Pure rewrites of relative-time commands.
public enum PropagationRewriter {
    /// The commands to propagate instead of `arguments` (`[]` for none), or `nil` to propagate it as received.
    /// - Parameters:
    ///   - name: the command's lowercase name.
    ///   - now: the command's time, unix ms.
    public static func rewrite(_ name: String, _ arguments: CommandArguments, now: Int64) -> [[[UInt8]]]? {
        switch name {
        case "set":
            var index = 3
            var rewritten: [[UInt8]] = [Array("SET".utf8), arguments.bytes(1), arguments.bytes(2)]
            var changed = false
            while index < arguments.count {
                if index + 1 < arguments.count, let amount = arguments.integer(index + 1),
                    arguments.matches(index, "ex") || arguments.matches(index, "px")
                {
                    let milliseconds = arguments.matches(index, "ex") ? amount.multipliedReportingOverflow(by: 1000).partialValue : amount
                    rewritten.append(Array("PXAT".utf8))
                    rewritten.append(Array(String(now &+ Int64(milliseconds)).utf8))
                    changed = true
                    index += 2
                    continue
                }
                rewritten.append(arguments.bytes(index))
                index += 1
            }
            return changed ? [rewritten] : nil
        case "setex", "psetex":
            guard arguments.count == 4, let amount = arguments.integer(2) else { return nil }
            let milliseconds = name == "setex" ? Int64(amount) &* 1000 : Int64(amount)
            return [[Array("SET".utf8), arguments.bytes(1), arguments.bytes(3), Array("PXAT".utf8), Array(String(now &+ milliseconds).utf8)]]
        case "expire", "pexpire":
            guard arguments.count >= 3, let amount = arguments.integer(2) else { return nil }
            let at = now &+ (name == "expire" ? Int64(amount) &* 1000 : Int64(amount))
            if at <= now && arguments.count == 3 {
                return [[Array("DEL".utf8), arguments.bytes(1)]]
            }
            var rewritten: [[UInt8]] = [Array("PEXPIREAT".utf8), arguments.bytes(1), Array(String(at).utf8)]
            for index in 3..<arguments.count { rewritten.append(arguments.bytes(index)) }
            return [rewritten]
        case "getex":
            guard arguments.count >= 2 else { return nil }
            let key = arguments.bytes(1)
            guard arguments.count >= 3 else { return [] }
            if arguments.matches(2, "persist") { return [[Array("PERSIST".utf8), key]] }
            guard arguments.count >= 4, let amount = arguments.integer(3) else { return nil }
            let at: Int64
            if arguments.matches(2, "ex") {
                at = now &+ Int64(amount) &* 1000
            } else if arguments.matches(2, "px") {
                at = now &+ Int64(amount)
            } else if arguments.matches(2, "exat") {
                at = Int64(amount) &* 1000
            } else if arguments.matches(2, "pxat") {
                at = Int64(amount)
            } else {
                return nil
            }
            return [[Array("PEXPIREAT".utf8), key, Array(String(at).utf8)]]
        default:
            return nil
        }
    }
}
