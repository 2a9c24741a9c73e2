// MODULE without a module API: LIST is empty, LOAD and UNLOAD fail with redis's errors, HELP and arity as redis's.
import CacheNode
import CacheNodeTestSupport
import Testing

struct ModuleCommandsTests {
    @Test func noModuleIsEverLoaded() throws {
        let client = try TestNode().connect()
        #expect(try client.send("MODULE", "LIST") == .array([]))
        #expect(try client.send("MODULE", "LOAD", "/usr/lib/redis/modules/redisbloom.so") == .error(
            "ERR Error loading the extension. Please check the server logs."))
        #expect(try client.send("MODULE", "LOADEX", "/tmp/x.so", "ARGS", "a") == .error(
            "ERR Error loading the extension. Please check the server logs."))
        #expect(try client.send("MODULE", "UNLOAD", "bf") == .error("ERR Error unloading module: no such module with that name"))
        #expect(try client.send("MODULE", "HELP").strings?.first == "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        #expect(try client.send("MODULE", "LIST", "extra") == .error("ERR wrong number of arguments for 'module|list' command"))
        #expect(try client.send("MODULE", "LOAD") == .error("ERR wrong number of arguments for 'module|load' command"))
        #expect(try client.send("MODULE", "FROB").isError)
        #expect(try client.send("COMMAND", "INFO", "module").elements?.first?.elements?.first == .string("module"))
    }
}
