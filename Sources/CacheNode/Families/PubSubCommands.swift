// The pub/sub family (redis pubsub.c): SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, the sharded
// SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH (on one node: the same delivery in a namespace of their own), and PUBSUB
// introspection. Subscriptions and delivery live in ``PubSubHub``; these handlers parse, call it, and write the
// confirmations: one push per channel, `[kind, channel, count]` (RESP2 arrays, RESP3 `>` pushes).
//
// RESP2 subscriber mode (only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET allowed) is enforced by the
// dispatcher from `ClientSession.channels`/`patterns` and the `.allowedWhileSubscribed` flag.
import CacheStore
import NIOCore
import RESPServer

extension CommandTable {
    static let pubSubCommands: [CommandSpec] = [
        // SUBSCRIBE channel [channel ...]
        CommandSpec("subscribe", arity: -2, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Listens for messages published to channels.", since: "2.0.0") { context, reply throws(CommandError) in
            PubSubFamily.subscribe(&context, &reply, .channel)
        },
        // UNSUBSCRIBE [channel [channel ...]]
        CommandSpec("unsubscribe", arity: -1, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Stops listening to messages posted to channels.", since: "2.0.0") { context, reply throws(CommandError) in
            PubSubFamily.unsubscribe(&context, &reply, .channel)
        },
        // PSUBSCRIBE pattern [pattern ...]
        CommandSpec("psubscribe", arity: -2, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Listens for messages published to channels that match one or more patterns.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            PubSubFamily.subscribe(&context, &reply, .pattern)
        },
        // PUNSUBSCRIBE [pattern [pattern ...]]
        CommandSpec("punsubscribe", arity: -1, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Stops listening to messages published to channels that match one or more patterns.",
                    since: "2.0.0") { context, reply throws(CommandError) in
            PubSubFamily.unsubscribe(&context, &reply, .pattern)
        },
        // PUBLISH channel message
        CommandSpec("publish", arity: 3, flags: PubSubFamily.publishFlags, group: .pubsub,
                    summary: "Posts a message to a channel.", since: "2.0.0") { context, reply throws(CommandError) in
            PubSubFamily.publish(&context, &reply, .channel)
        },
        // SSUBSCRIBE shardchannel [shardchannel ...]
        CommandSpec("ssubscribe", arity: -2, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Listens for messages published to shard channels.", since: "7.0.0") { context, reply throws(CommandError) in
            PubSubFamily.subscribe(&context, &reply, .shardChannel)
        },
        // SUNSUBSCRIBE [shardchannel [shardchannel ...]]
        CommandSpec("sunsubscribe", arity: -1, flags: PubSubFamily.subscriptionFlags, group: .pubsub,
                    summary: "Stops listening to messages posted to shard channels.", since: "7.0.0") { context, reply throws(CommandError) in
            PubSubFamily.unsubscribe(&context, &reply, .shardChannel)
        },
        // SPUBLISH shardchannel message
        CommandSpec("spublish", arity: 3, flags: PubSubFamily.publishFlags, group: .pubsub,
                    summary: "Post a message to a shard channel", since: "7.0.0") { context, reply throws(CommandError) in
            PubSubFamily.publish(&context, &reply, .shardChannel)
        },
        // PUBSUB <subcommand> [argument [argument ...]]
        CommandSpec("pubsub", arity: -2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "A container for Pub/Sub commands.", since: "2.8.0",
                    subcommands: PubSubFamily.pubsubSubcommands) { context, reply throws(CommandError) in
            try PubSubFamily.pubsub(&context, &reply)
        },
    ]
}

/// Shared implementations of the pub/sub commands.
enum PubSubFamily {
    /// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE: allowed in RESP2 subscriber mode.
    static let subscriptionFlags: CommandFlags = [.pubsub, .noScript, .allowedWhileSubscribed, .noKeyspace, .loading, .stale]
    /// PUBLISH and SPUBLISH.
    /// PUBLISH feeds replicas the message (redis may-replicate), so CLIENT PAUSE WRITE holds it back.
    static let publishFlags: CommandFlags = [.pubsub, .fast, .noKeyspace, .loading, .stale, .mayReplicate]

    /// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: one confirmation per argument, in order, with the count after it.
    static func subscribe(_ context: inout CommandContext, _ reply: inout ReplyWriter, _ kind: PubSubKind) {
        let arguments = context.arguments
        var names: [CompactBytes] = []
        names.reserveCapacity(arguments.count - 1)
        for index in 1..<arguments.count { names.append(context.bytes(index)) }
        let counts = context.node.pubsub.subscribe(context.session, to: names, kind)
        for (offset, count) in counts.enumerated() {
            confirmation(&reply, kind.subscribeWord, name: arguments.buffer(offset + 1), count: count)
        }
    }

    /// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: one confirmation per name; without names, one per dropped
    /// subscription, or `[kind, nil, count]` when there was none.
    static func unsubscribe(_ context: inout CommandContext, _ reply: inout ReplyWriter, _ kind: PubSubKind) {
        let arguments = context.arguments
        let session = context.session
        let hub = context.node.pubsub
        if arguments.count == 1 {
            let dropped = hub.unsubscribe(session, from: nil, kind)
            if dropped.isEmpty {
                reply.pushHeader(3)
                reply.bulk(kind.unsubscribeWord)
                reply.null()
                reply.integer(kind == .shardChannel ? hub.shardSubscriptionCount(session) : session.channels.count + session.patterns.count)
            }
            for (name, count) in dropped {
                name.withBytes { bytes in
                    reply.pushHeader(3)
                    reply.bulk(kind.unsubscribeWord)
                    reply.bulk(bytes)
                    reply.integer(count)
                }
            }
            return
        }
        var names: [CompactBytes] = []
        names.reserveCapacity(arguments.count - 1)
        for index in 1..<arguments.count { names.append(context.bytes(index)) }
        let results = hub.unsubscribe(session, from: names, kind)
        for (offset, result) in results.enumerated() {
            confirmation(&reply, kind.unsubscribeWord, name: arguments.buffer(offset + 1), count: result.count)
        }
    }

    private static func confirmation(_ reply: inout ReplyWriter, _ word: String, name: ByteBuffer, count: Int) {
        reply.pushHeader(3)
        reply.bulk(word)
        reply.bulk(name)
        reply.integer(count)
    }

    /// PUBLISH / SPUBLISH: the number of receivers; messages to the publisher itself follow that reply.
    static func publish(_ context: inout CommandContext, _ reply: inout ReplyWriter, _ kind: PubSubKind) {
        let arguments = context.arguments
        let outcome = context.node.pubsub.publish(
            channel: arguments.buffer(1), message: arguments.buffer(2), kind, from: context.session,
            deferred: context.inTransaction)
        reply.integer(outcome.receivers)
        for message in outcome.ownMessages { reply.raw(message) }
    }

    // MARK: PUBSUB

    static let pubsubSubcommands: [CommandSpec] = [
        // PUBSUB CHANNELS [pattern]
        CommandSpec("pubsub|channels", arity: -2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns the active channels.", since: "2.8.0") { context, reply throws(CommandError) in
            activeChannels(&context, &reply, .channel)
        },
        // PUBSUB NUMPAT
        CommandSpec("pubsub|numpat", arity: 2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns a count of unique pattern subscriptions.", since: "2.8.0") { context, reply throws(CommandError) in
            reply.integer(context.node.pubsub.patternCount)
        },
        // PUBSUB NUMSUB [channel [channel ...]]
        CommandSpec("pubsub|numsub", arity: -2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns a count of subscribers to channels.", since: "2.8.0") { context, reply throws(CommandError) in
            subscriberCounts(&context, &reply, .channel)
        },
        // PUBSUB SHARDCHANNELS [pattern]
        CommandSpec("pubsub|shardchannels", arity: -2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns the active shard channels.", since: "7.0.0") { context, reply throws(CommandError) in
            activeChannels(&context, &reply, .shardChannel)
        },
        // PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
        CommandSpec("pubsub|shardnumsub", arity: -2, flags: [.pubsub, .noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns the count of subscribers of shard channels.", since: "7.0.0") { context, reply throws(CommandError) in
            subscriberCounts(&context, &reply, .shardChannel)
        },
        // PUBSUB HELP
        CommandSpec("pubsub|help", arity: 2, flags: [.noKeyspace, .loading, .stale], group: .pubsub,
                    summary: "Returns helpful text about the different subcommands.", since: "6.2.0") { _, reply throws(CommandError) in
            let lines = [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ]
            reply.simpleStringLines(lines)
        },
    ]

    /// PUBSUB: finds the subcommand and runs it (the dispatcher checked its arity).
    static func pubsub(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let name = "pubsub|" + context.arguments.lowercased(1)
        guard let subcommand = pubsubSubcommands.first(where: { $0.name == name }) else {
            throw .unknownSubcommand(context.arguments.string(1), of: "pubsub")
        }
        try subcommand.handler(&context, &reply)
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS [pattern]: an array of the active names matching the pattern.
    /// Arguments after the pattern are ignored, as redis 7.2 does.
    private static func activeChannels(_ context: inout CommandContext, _ reply: inout ReplyWriter, _ kind: PubSubKind) {
        let arguments = context.arguments
        let pattern = arguments.count >= 3 ? context.bytes(2) : nil
        let names = context.node.pubsub.activeChannels(kind, matching: pattern)
        reply.arrayHeader(names.count)
        for name in names { name.withBytes { reply.bulk($0) } }
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB [name ...]: a flat array of name, count pairs (an array in RESP3 too, as redis).
    private static func subscriberCounts(_ context: inout CommandContext, _ reply: inout ReplyWriter, _ kind: PubSubKind) {
        let arguments = context.arguments
        var names: [CompactBytes] = []
        if arguments.count > 2 {
            for index in 2..<arguments.count { names.append(context.bytes(index)) }
        }
        let counts = context.node.pubsub.subscriberCounts(kind, for: names)
        reply.arrayHeader(names.count * 2)
        for (offset, count) in counts.enumerated() {
            reply.bulk(arguments.buffer(offset + 2))
            reply.integer(count)
        }
    }
}
