// Tests of ACL users through the real decoder, dispatcher and reply writer (redis tests/unit/acl.tcl): the default
// user and requirepass, AUTH as a named user, command, subcommand, category, key and channel rules, the ACL log,
// DRYRUN, deleting a user and its connections, and scripts running under the caller's rules.
@testable import CacheNode
import CacheNodeTestSupport
import Foundation
import Testing

private func bulk(_ text: String) -> RESPValue { .string(text) }

struct ACLCommandsTests {
    @Test func theDefaultUserHasEveryPermission() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ACL", "WHOAMI") == bulk("default"))
        #expect(try client.send("ACL", "USERS") == .array([bulk("default")]))
        #expect(try client.send("ACL", "LIST") == .array([bulk("user default on nopass sanitize-payload ~* &* +@all")]))
        #expect(try client.send("AUTH", "default", "anything") == .simple("OK"))
        #expect(try client.send("AUTH", "pw").text?.hasPrefix("ERR AUTH <password> called without any password configured") == true)
        #expect(try client.send("ACL", "NOSUCH") == .error("ERR unknown subcommand 'NOSUCH'. Try ACL HELP."))
    }

    @Test func requirepassIsTheDefaultUsersPassword() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("CONFIG", "SET", "requirepass", "secret") == .simple("OK"))
        let client = try node.connect()
        #expect(try client.send("GET", "k").text?.hasPrefix("NOAUTH") == true)
        #expect(try client.send("AUTH", "wrong").text?.hasPrefix("WRONGPASS") == true)
        #expect(try client.send("AUTH", "secret") == .simple("OK"))
        #expect(try client.send("AUTH", "default", "secret") == .simple("OK"))
        #expect(try client.send("ACL", "GETUSER", "default").description.contains(AccessControl.sha256("secret")))
        // RESET goes back to the default user, unauthenticated while it has a password.
        #expect(try client.send("RESET") == .simple("RESET"))
        #expect(try client.send("GET", "k").text?.hasPrefix("NOAUTH") == true)
        #expect(try client.send("AUTH", "secret") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "requirepass", "") == .simple("OK"))
        #expect(try node.connect().send("GET", "k") == .null)
    }

    @Test func commandKeyAndChannelRules() throws {
        let node = TestNode()
        let admin = try node.connect()
        #expect(try admin.send("ACL", "SETUSER", "alice", "on", ">pw", "~cached:*", "%R~shared:*", "&news:*", "+get", "+set", "+publish",
                               "+psubscribe", "+config|get", "+@list", "+@transaction") == .simple("OK"))
        _ = try admin.send("SET", "shared:1", "s")
        let alice = try node.connect()
        #expect(try alice.send("AUTH", "alice", "nope").text?.hasPrefix("WRONGPASS") == true)
        #expect(try alice.send("AUTH", "alice", "pw") == .simple("OK"))
        #expect(try alice.send("ACL", "WHOAMI") == .error("NOPERM User alice has no permissions to run the 'acl|whoami' command"))
        #expect(try alice.send("SET", "cached:1", "v") == .simple("OK"))
        #expect(try alice.send("GET", "cached:1") == bulk("v"))
        #expect(try alice.send("GET", "shared:1") == bulk("s"))
        #expect(try alice.send("SET", "shared:1", "x") == .error("NOPERM No permissions to access a key"))
        #expect(try alice.send("GET", "other") == .error("NOPERM No permissions to access a key"))
        #expect(try alice.send("DEL", "cached:1") == .error("NOPERM User alice has no permissions to run the 'del' command"))
        #expect(try alice.send("RPUSH", "cached:list", "a") == .integer(1))
        #expect(try alice.send("CONFIG", "GET", "maxmemory").count == 2)
        #expect(try alice.send("CONFIG", "SET", "maxmemory", "0") == .error("NOPERM User alice has no permissions to run the 'config|set' command"))
        #expect(try alice.send("PUBLISH", "news:1", "hi") == .integer(0))
        #expect(try alice.send("PUBLISH", "sports", "hi") == .error("NOPERM No permissions to access a channel"))
        // A PSUBSCRIBE pattern must be one of the user's own patterns.
        #expect(try alice.send("PSUBSCRIBE", "n*") == .error("NOPERM No permissions to access a channel"))
        // A denied command inside MULTI fails the transaction.
        #expect(try alice.send("MULTI") == .simple("OK"))
        #expect(try alice.send("DEL", "cached:1").text?.hasPrefix("NOPERM") == true)
        #expect(try alice.send("EXEC").text?.hasPrefix("EXECABORT") == true)
        #expect(try admin.send("CLIENT", "LIST").text?.contains("user=alice") == true)

        // The log, newest first: the MULTI denial, ..., the failed AUTH.
        guard case .array(let entries) = try admin.send("ACL", "LOG") else {
            Issue.record("ACL LOG did not return an array")
            return
        }
        let fields = entries.map { entry -> [String: String] in
            guard case .array(let pairs) = entry else { return [:] }
            var result: [String: String] = [:]
            for index in stride(from: 0, to: pairs.count - 1, by: 2) { result[pairs[index].text ?? ""] = pairs[index + 1].text ?? "" }
            return result
        }
        #expect(fields.first?["reason"] == "command" && fields.first?["context"] == "multi" && fields.first?["object"] == "del")
        #expect(fields.contains { $0["reason"] == "key" && $0["object"] == "other" && $0["username"] == "alice" })
        #expect(fields.contains { $0["reason"] == "channel" && $0["object"] == "sports" })
        #expect(fields.last?["reason"] == "auth" && fields.last?["object"] == "AUTH")
        #expect(try admin.send("ACL", "LOG", "RESET") == .simple("OK"))
        #expect(try admin.send("ACL", "LOG") == .array([]))

        #expect(try admin.send("ACL", "DRYRUN", "alice", "get", "cached:9") == .simple("OK"))
        #expect(try admin.send("ACL", "DRYRUN", "alice", "get", "other") == bulk("User alice has no permissions to access the 'other' key"))
        #expect(try admin.send("ACL", "DRYRUN", "alice", "flushall") == bulk("User alice has no permissions to run the 'flushall' command"))
        #expect(try admin.send("ACL", "DRYRUN", "nobody", "get", "x") == .error("ERR User 'nobody' not found"))

        // Changed rules apply to the connected user at once; scripts run under them.
        #expect(try admin.send("ACL", "SETUSER", "alice", "+eval") == .simple("OK"))
        #expect(try alice.send("EVAL", "return redis.call('del', 'cached:1')", "0").text?
                    .hasPrefix("ERR ACL failure in script: User alice has no permissions to run the 'del' command") == true)
        #expect(try admin.send("ACL", "SETUSER", "alice", "off") == .simple("OK"))
        #expect(try node.connect().send("AUTH", "alice", "pw").text?.hasPrefix("WRONGPASS") == true)
        // Deleting the user closes its connections.
        #expect(try admin.send("ACL", "DELUSER", "alice", "ghost") == .integer(1))
        #expect(throws: (any Error).self) { _ = try alice.send("GET", "cached:1") }
        #expect(try admin.send("ACL", "DELUSER", "default") == .error("ERR The 'default' user cannot be removed"))
    }

    @Test func setuserValidatesEveryRuleBeforeApplyingAny() throws {
        let client = try TestNode().connect()
        #expect(try client.send("ACL", "SETUSER", "bob", "on", "bogus") == .error("ERR Error in ACL SETUSER modifier 'bogus': Syntax error"))
        #expect(try client.send("ACL", "GETUSER", "bob") == .null)
        #expect(try client.send("ACL", "SETUSER", "bob", "+nosuch")
                == .error("ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"))
        #expect(try client.send("ACL", "SETUSER", "bob", "allkeys", "~x").text?.contains("Adding a pattern after the * pattern") == true)
        #expect(try client.send("ACL", "SETUSER", "bob", "#abc").text?.contains("The password hash must be exactly 64 characters") == true)
        #expect(try client.send("ACL", "SETUSER", "bob", "<never").text?.contains("The password you are trying to remove from the user does not exist") == true)
        #expect(try client.send("ACL", "SETUSER", "bob", "on", ">one", ">two", "<one", "~a:*", "+@read", "-@dangerous") == .simple("OK"))
        #expect(try client.send("ACL", "LIST") == .array([
            bulk("user bob on sanitize-payload #\(AccessControl.sha256("two")) ~a:* resetchannels -@all +@read -@dangerous"),
            bulk("user default on nopass sanitize-payload ~* &* +@all"),
        ]))
        #expect(try client.send("ACL", "GETUSER", "bob") == .array([
            bulk("flags"), .array([bulk("on"), bulk("sanitize-payload")]),
            bulk("passwords"), .array([bulk(AccessControl.sha256("two"))]),
            bulk("commands"), bulk("-@all +@read -@dangerous"),
            bulk("keys"), bulk("~a:*"),
            bulk("channels"), bulk(""),
            bulk("selectors"), .array([]),
        ]))
        #expect(try client.send("ACL", "CAT").count == AccessControl.categories.count)
        guard case .array(let readCommands) = try client.send("ACL", "CAT", "read") else { return }
        #expect(readCommands.contains(bulk("get")) && !readCommands.contains(bulk("set")))
        #expect(try client.send("ACL", "CAT", "nosuch") == .error("ERR Unknown category 'nosuch'"))
        #expect(try client.send("ACL", "GENPASS").text?.count == 64)
        #expect(try client.send("ACL", "GENPASS", "32").text?.count == 8)
        #expect(try client.send("ACL", "SAVE").text?.hasPrefix("ERR This Redis instance is not configured to use an ACL file") == true)
    }
}

private extension RESPValue {
    var count: Int? {
        if case .array(let items) = self { return items.count }
        return nil
    }
}

struct ACLFileTests {
    @Test func saveAndLoadTheACLFile() throws {
        let path = NSTemporaryDirectory() + "users-\(UUID().uuidString).acl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var configuration = NodeConfiguration()
        configuration.aclFile = path
        let node = TestNode(configuration: configuration)
        let admin = try node.connect()
        #expect(try admin.send("CONFIG", "GET", "aclfile") == .array([bulk("aclfile"), bulk(path)]))
        #expect(try admin.send("ACL", "SETUSER", "alice", "on", ">pw", "~app:*", "+get") == .simple("OK"))
        #expect(try admin.send("ACL", "SAVE") == .simple("OK"))
        let saved = try String(contentsOfFile: path, encoding: .utf8)
        #expect(saved == "user alice on sanitize-payload #\(AccessControl.sha256("pw")) ~app:* resetchannels -@all +get\nuser default on nopass sanitize-payload ~* &* +@all\n")
        // A user made since the save is gone after LOAD, and its connection closed; alice is as saved.
        #expect(try admin.send("ACL", "SETUSER", "bob", "on", "nopass", "+@all", "~*") == .simple("OK"))
        let bob = try node.connect()
        #expect(try bob.send("AUTH", "bob", "x") == .simple("OK"))
        #expect(try admin.send("ACL", "LOAD") == .simple("OK"))
        #expect(try admin.send("ACL", "USERS") == .array([bulk("alice"), bulk("default")]))
        #expect(throws: (any Error).self) { _ = try bob.send("PING") }
        // A bad file changes nothing.
        try "user carol on +nosuch\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try admin.send("ACL", "LOAD").text?.contains(":1: Unknown command or category name in ACL") == true)
        #expect(try admin.send("ACL", "USERS") == .array([bulk("alice"), bulk("default")]))
    }

    @Test func userDirectivesAndTheirConflictWithAnACLFile() throws {
        let configuration = try NodeConfiguration.parse(arguments: ["--user", "ops", "on", ">pw", "~*", "+@read", "--requirepass", "secret"])
        #expect(configuration.users == [["ops", "on", ">pw", "~*", "+@read"]])
        let node = TestNode(configuration: configuration)
        try node.state.loadUsersAtStartup()
        let client = try node.connect()
        #expect(try client.send("AUTH", "ops", "pw") == .simple("OK"))
        #expect(try client.send("GET", "k") == .null)
        #expect(try client.send("SET", "k", "v").text?.hasPrefix("NOPERM") == true)
        // requirepass still sets the default user's password.
        #expect(try client.send("AUTH", "default", "secret") == .simple("OK"))
        #expect(throws: ConfigurationError.self) {
            _ = try NodeConfiguration.parse(arguments: ["--user", "ops", "on", "--aclfile", "/tmp/users.acl"])
        }
    }
}
