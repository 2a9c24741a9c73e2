// Tests of FCALL, FCALL_RO and FUNCTION through the real decoder, dispatcher, Lua engine and reply writer (redis
// tests/unit/functions.tcl): loading libraries and the load-time API, calling functions, listing, deleting,
// flushing, DUMP/RESTORE with their policies, read-only calls, and what reaches replicas.
@testable import CacheNode
import CacheNodeTestSupport
import Foundation
import Testing

private func bulk(_ text: String) -> RESPValue { .string(text) }

private extension RESPValue {
    var count: Int? {
        if case .array(let items) = self { return items.count }
        return nil
    }
}

private extension TestClient {
    /// Sends words given as text or as raw bytes (a DUMP payload).
    func send(_ words: [any Sendable]) throws -> RESPValue {
        try send(arguments: words.map { ($0 as? [UInt8]) ?? Array(($0 as! String).utf8) })
    }
}

private let counterLibrary = """
    #!lua name=counters
    local function bump(keys, args)
        return redis.call('incrby', keys[1], args[1])
    end
    redis.register_function('bump', bump)
    redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end,
                            flags={'no-writes'}, description='reads a counter'}
    """

struct FunctionCommandsTests {
    @Test func loadCallAndList() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        #expect(try client.send("FUNCTION", "LOAD", counterLibrary) == bulk("counters"))
        #expect(try client.send("FCALL", "bump", "1", "c", "5") == .integer(5))
        #expect(try client.send("FCALL", "bump", "1", "c", "2") == .integer(7))
        #expect(try client.send("FCALL_RO", "peek", "1", "c") == bulk("7"))
        // KEYS and ARGV are the function's arguments, not globals.
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=g\nredis.register_function('g', function() return KEYS end)")
        #expect(try client.send("FCALL", "g", "0").text?.contains("Script attempted to access nonexistent global variable 'KEYS'") == true)
        let peek = RESPValue.map([bulk("name"), bulk("peek"), bulk("description"), bulk("reads a counter"), bulk("flags"), .set([bulk("no-writes")])])
        let bump = RESPValue.map([bulk("name"), bulk("bump"), bulk("description"), .null, bulk("flags"), .set([])])
        #expect(try client.send("FUNCTION", "LIST", "LIBRARYNAME", "count*")
                == .array([.map([bulk("library_name"), bulk("counters"), bulk("engine"), bulk("LUA"), bulk("functions"), .array([bump, peek])])]))
        #expect(try client.send("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "counters")
                == .array([.map([bulk("library_name"), bulk("counters"), bulk("engine"), bulk("LUA"), bulk("functions"), .array([bump, peek]),
                                 bulk("library_code"), bulk(counterLibrary)])]))
        #expect(try client.send("FUNCTION", "LIST").count == 2)
        #expect(try client.send("FUNCTION", "LIST", "LIBRARYNAME") == .error("ERR library name argument was not given"))
        #expect(try client.send("FUNCTION", "LIST", "bogus") == .error("ERR Unknown argument bogus"))
        // SCRIPT FLUSH and FLUSHALL leave functions alone.
        _ = try client.send("SCRIPT", "FLUSH")
        _ = try client.send("FLUSHALL")
        #expect(try client.send("FCALL", "bump", "1", "c", "1") == .integer(1))
        #expect(try client.send("FCALL", "nosuch", "0") == .error("ERR Function not found"))
        #expect(try client.send("FCALL", "bump", "x") == .error("ERR Bad number of keys provided"))
        #expect(try client.send("FCALL", "bump", "3", "a") == .error("ERR Number of keys can't be greater than number of args"))
        #expect(try client.send("FCALL", "bump", "-1") == .error("ERR Number of keys can't be negative"))
        // Errors name the function and the library's line.
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=boom\n\nredis.register_function('boom', function() error('bad') end)")
        let raised = try client.send("FCALL", "boom", "0").text ?? ""
        #expect(raised.hasPrefix("ERR user_function:3: bad script: boom, on @user_function:3."))
        let info = try client.send("INFO", "memory").text ?? ""
        #expect(info.contains("number_of_functions:4\r\n") && info.contains("number_of_libraries:3\r\n"))
    }

    @Test func loadErrorsLeaveTheLibrariesAsTheyWere() throws {
        let client = try TestNode().connect()
        func error(_ code: String, replace: Bool = false) throws -> String {
            try (replace ? client.send("FUNCTION", "LOAD", "REPLACE", code) : client.send("FUNCTION", "LOAD", code)).text ?? ""
        }
        #expect(try error("return 1") == "ERR Missing library metadata")
        #expect(try error("#!lua name=x") == "ERR Invalid library metadata")
        #expect(try error("#!lua\nreturn 1") == "ERR Library name was not given")
        #expect(try error("#!lua name=a name=b\nreturn 1") == "ERR Invalid metadata value, name argument was given multiple times")
        #expect(try error("#!lua name=a foo=bar\nreturn 1") == "ERR Invalid metadata value given: foo=bar")
        #expect(try error("#!lua name=a-b\nreturn 1").hasPrefix("ERR Library names can only contain letters, numbers, or underscores(_)"))
        #expect(try error("#!python name=a\nreturn 1") == "ERR Engine 'python' not found")
        #expect(try error("#!lua name=a\nlocal x = 1") == "ERR No functions registered")
        #expect(try error("#!lua name=a\nreturn 'unfinished").hasPrefix("ERR Error compiling function: user_function:2: unfinished string"))
        // The load-time API: register_function and log only.
        #expect(try error("#!lua name=a\nreturn redis.call('ping')").contains("attempted to access nonexistent global variable 'call'"))
        #expect(try error("#!lua name=a\nreturn math.random()").contains("attempted to access nonexistent global variable 'math'"))
        #expect(try error("#!lua name=a\nredis.register_function('f', 'x')").contains("second argument to redis.register_function must be a function"))
        #expect(try error("#!lua name=a\nredis.register_function('f')").contains("calling redis.register_function with a single argument is only applicable to Lua table"))
        #expect(try error("#!lua name=a\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}").contains("unknown flag given"))
        #expect(try error("#!lua name=a\nredis.register_function('', function() end)").contains("Library names can only contain"))
        #expect(try error("#!lua name=a\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)")
                .contains("Function already exists in the library"))
        #expect(try error("#!lua name=a\na = 1").contains("Attempt to modify a readonly table"))

        _ = try client.send("FUNCTION", "LOAD", "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)")
        #expect(try error("#!lua name=lib1\nredis.register_function('f1', function() return 2 end)") == "ERR Library 'lib1' already exists")
        // A collision with another library's function, or a failing registration, keeps what was loaded.
        #expect(try error("#!lua name=lib2\nredis.register_function('f1', function() return 3 end)") == "ERR Function f1 already exists")
        #expect(try error("#!lua name=lib1\nredis.register_function('f2', function() return 2 end)\nredis.register_function('f3', 'x')", replace: true)
                .contains("second argument to redis.register_function must be a function"))
        #expect(try client.send("FCALL", "f1", "0") == .integer(1))
        #expect(try client.send("FCALL", "f2", "0") == .error("ERR Function not found"))
        // REPLACE swaps the library's functions.
        #expect(try client.send("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib1\nredis.register_function('f2', function() return 2 end)") == bulk("lib1"))
        #expect(try client.send("FCALL", "f1", "0") == .error("ERR Function not found"))
        #expect(try client.send("FCALL", "f2", "0") == .integer(2))
        // A library's API cannot be smuggled into a function, nor register_function called outside a load.
        _ = try client.send("FUNCTION", "LOAD", """
            #!lua name=sneaky
            local lib = redis
            lib.register_function('s1', function() lib.math = math return 1 end)
            lib.register_function('s2', function() lib.register_function('s3', function() end) end)
            """)
        #expect(try client.send("FCALL", "s1", "0").text?.contains("Attempt to modify a readonly table") == true)
        #expect(try client.send("FCALL", "s2", "0").text?.contains("can only be called on FUNCTION LOAD command") == true)
    }

    @Test func aLoadThatRunsTooLongIsStopped() throws {
        let client = try TestNode().connect()
        #expect(try client.send("FUNCTION", "LOAD", "#!lua name=slow\nlocal a = 1 while 1 do a = a + 1 end") == .error("ERR Error registering functions: ERR FUNCTION LOAD timeout"))
        #expect(try client.send("FUNCTION", "LIST") == .array([]))
    }

    @Test func readOnlyCalls() throws {
        let client = try TestNode().connect()
        _ = try client.send("FUNCTION", "LOAD", counterLibrary)
        #expect(try client.send("FCALL_RO", "bump", "1", "c", "1") == .error("ERR Can not execute a script with write flag using *_ro command."))
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=sly\nredis.register_function{function_name='sly', callback=function(keys) return redis.call('del', keys[1]) end, flags={'no-writes'}}")
        #expect(try client.send("FCALL", "sly", "1", "c").text?.hasPrefix("ERR Write commands are not allowed from read-only scripts.") == true)
    }

    @Test func deleteFlushDumpAndRestore() throws {
        let client = try TestNode().connect()
        _ = try client.send("FUNCTION", "LOAD", counterLibrary)
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('other', function() return 'o' end)")
        guard case .bulk(let payload) = try client.send("FUNCTION", "DUMP") else {
            Issue.record("FUNCTION DUMP did not return a bulk string")
            return
        }
        #expect(try client.send("FUNCTION", "DELETE", "other") == .simple("OK"))
        #expect(try client.send("FUNCTION", "DELETE", "other") == .error("ERR Library not found"))
        #expect(try client.send("FCALL", "other", "0") == .error("ERR Function not found"))
        // APPEND (the default) refuses a library that exists; REPLACE takes it; FLUSH starts from the payload alone.
        #expect(try client.send(["FUNCTION", "RESTORE", payload]) == .error("ERR Library counters already exists"))
        #expect(try client.send("FCALL", "other", "0") == .error("ERR Function not found"))
        #expect(try client.send(["FUNCTION", "RESTORE", payload, "REPLACE"]) == .simple("OK"))
        #expect(try client.send("FCALL", "other", "0") == bulk("o"))
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=extra\nredis.register_function('extra', function() return 'e' end)")
        #expect(try client.send(["FUNCTION", "RESTORE", payload, "FLUSH"]) == .simple("OK"))
        #expect(try client.send("FUNCTION", "LIST").count == 2)
        #expect(try client.send("FCALL", "extra", "0") == .error("ERR Function not found"))
        #expect(try client.send(["FUNCTION", "RESTORE", payload, "BOGUS"])
                == .error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
        var damaged = payload
        damaged[3] ^= 0xFF
        #expect(try client.send(["FUNCTION", "RESTORE", damaged, "FLUSH"])
                == .error("ERR DUMP payload version or checksum are wrong"))
        #expect(try client.send("FUNCTION", "FLUSH", "bogus") == .error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"))
        #expect(try client.send("FUNCTION", "FLUSH", "SYNC") == .simple("OK"))
        #expect(try client.send("FUNCTION", "LIST") == .array([]))
        #expect(try client.send("FCALL", "bump", "1", "c", "1") == .error("ERR Function not found"))
        // An empty set dumps too, and restores to nothing.
        guard case .bulk(let empty) = try client.send("FUNCTION", "DUMP") else {
            Issue.record("FUNCTION DUMP did not return a bulk string")
            return
        }
        #expect(try client.send(["FUNCTION", "RESTORE", empty]) == .simple("OK"))
    }

    @Test func statsKillAndHelp() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        _ = try client.send("FUNCTION", "LOAD", counterLibrary)
        #expect(try client.send("FUNCTION", "STATS")
                == .map([bulk("running_script"), .null, bulk("engines"),
                         .map([bulk("LUA"), .map([bulk("libraries_count"), .integer(1), bulk("functions_count"), .integer(2)])])]))
        #expect(try client.send("FUNCTION", "KILL") == .error("NOTBUSY No scripts in execution right now."))
        #expect((try client.send("FUNCTION", "HELP").count ?? 0) > 10)
        #expect(try client.send("FUNCTION", "NOSUCH") == .error("ERR unknown subcommand 'NOSUCH'. Try FUNCTION HELP."))
        #expect(try client.send("FUNCTION", "DELETE") == .error("ERR wrong number of arguments for 'function|delete' command"))
        // Functions are not callable from scripts, nor FUNCTION from functions.
        #expect(try client.send("EVAL", "return redis.call('fcall', 'peek', 1, 'c')", "0").text?
                    .hasPrefix("ERR This Redis command is not allowed from script") == true)
    }

    @Test func debugReloadReplacesOrMergesTheLibraries() throws {
        let directory = NSTemporaryDirectory() + "function-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = NodeConfiguration()
        configuration.directory = directory
        configuration.save = ""
        let client = try TestNode(configuration: configuration).connect()
        _ = try client.send("FUNCTION", "LOAD", counterLibrary)
        #expect(try client.send("DEBUG", "RELOAD") == .simple("OK"))
        #expect(try client.send("FCALL", "bump", "1", "c", "2") == .integer(2))
        // NOSAVE reloads the file as it is: a library loaded since is gone, the data too.
        _ = try client.send("FUNCTION", "LOAD", "#!lua name=later\nredis.register_function('later', function() return 'l' end)")
        #expect(try client.send("DEBUG", "RELOAD", "NOSAVE") == .simple("OK"))
        #expect(try client.send("FCALL", "later", "0") == .error("ERR Function not found"))
        #expect(try client.send("EXISTS", "c") == .integer(0))
        // NOFLUSH keeps what is loaded, so the file's library collides unless MERGE lets it replace.
        #expect(try client.send("DEBUG", "RELOAD", "NOFLUSH").text?.hasPrefix("ERR Error trying to load the RDB dump") == true)
        #expect(try client.send("DEBUG", "RELOAD", "NOFLUSH", "MERGE") == .simple("OK"))
        #expect(try client.send("FUNCTION", "LIST").count == 1)
        #expect(try client.send("DEBUG", "RELOAD", "BOGUS") == .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."))
    }

    @Test func writesReachReplicasAsReceivedAndAsEffects() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        _ = try client.send("FUNCTION", "LOAD", counterLibrary)
        #expect(try recording.recorded() == [["SELECT", "0"], ["FUNCTION", "LOAD", counterLibrary]])
        _ = try client.send("FCALL", "bump", "1", "c", "3")
        #expect(try recording.recorded() == [["MULTI"], ["incrby", "c", "3"], ["EXEC"]])
        // Reads and failures send nothing.
        _ = try client.send("FCALL_RO", "peek", "1", "c")
        _ = try client.send("FUNCTION", "LIST")
        _ = try client.send("FUNCTION", "DELETE", "nosuch")
        #expect(try recording.recorded() == [])
        _ = try client.send("FUNCTION", "FLUSH")
        #expect(try recording.recorded() == [["FUNCTION", "FLUSH"]])
    }
}
