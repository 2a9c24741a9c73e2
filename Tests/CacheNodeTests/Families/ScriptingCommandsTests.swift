// Tests of EVAL, EVALSHA, EVAL_RO and SCRIPT through the real decoder, dispatcher, Lua engine and reply writer
// (redis tests/unit/scripting.tcl): the Lua <-> RESP conversions both ways, redis.call's rules, error texts, the
// script cache, globals protection, atomic effects on replicas and blocked clients, and maxmemory.
@testable import CacheNode
import CacheNodeTestSupport
import Testing

private func bulk(_ text: String) -> RESPValue { .string(text) }

struct ScriptingCommandsTests {
    @Test func luaValuesBecomeRedisReplies() throws {
        let client = try TestNode().connect()
        #expect(try client.send("EVAL", "return 42", "0") == .integer(42))
        // Numbers are truncated to integers; a float goes out as text only through tostring.
        #expect(try client.send("EVAL", "return 3.99", "0") == .integer(3))
        #expect(try client.send("EVAL", "return tostring(3.99)", "0") == bulk("3.99"))
        #expect(try client.send("EVAL", "return 'hi'", "0") == bulk("hi"))
        // true is 1, false and nil are a null; an array stops at its first nil.
        #expect(try client.send("EVAL", "return {1, 'two', {3, false}, true, nil, 6}", "0") == .array([
            .integer(1), bulk("two"), .array([.integer(3), .null]), .integer(1),
        ]))
        #expect(try client.send("EVAL", "return redis.status_reply('FINE')", "0") == .simple("FINE"))
        #expect(try client.send("EVAL", "return {ok='fine'}", "0") == .simple("fine"))
        #expect(try client.send("EVAL", "return redis.error_reply('MY failure')", "0") == .error("MY failure"))
        #expect(try client.send("EVAL", "return redis.error_reply('')", "0") == .error("ERR "))
        #expect(try client.send("EVAL", "return redis.error_reply('-CODEONLY')", "0") == .error("ERR CODEONLY"))
        #expect(try client.send("EVAL", "return {err='plain'}", "0") == .error("plain"))
        #expect(try client.send("EVAL", "return nil", "0") == .null)
        #expect(try client.send("EVAL", "", "0") == .null)
        #expect(try client.send("EVAL", "return #KEYS .. ':' .. #ARGV .. ':' .. KEYS[2] .. ARGV[1]", "2", "a", "b", "c") == bulk("2:1:bc"))
    }

    @Test func redisRepliesBecomeLuaValues() throws {
        let client = try TestNode().connect()
        _ = try client.send("RPUSH", "l", "a", "b")
        _ = try client.send("HSET", "h", "f", "v")
        // Status replies are {ok=...}, missing values false, arrays tables, integers numbers.
        #expect(try client.send("EVAL", "return redis.call('set', 'k', 'v').ok", "0") == bulk("OK"))
        #expect(try client.send("EVAL", "return redis.call('get', 'missing') == false", "0") == .integer(1))
        #expect(try client.send("EVAL", "return redis.call('lrange', 'l', 0, -1)[2]", "0") == bulk("b"))
        #expect(try client.send("EVAL", "return redis.call('llen', 'l') + 1", "0") == .integer(3))
        // Numbers given to redis.call keep their precision.
        _ = try client.send("EVAL", "return redis.call('set', 'n', 12345678901234)", "0")
        #expect(try client.send("GET", "n") == bulk("12345678901234"))
        _ = try client.send("EVAL", "return redis.call('set', 'd', 0.1)", "0")
        #expect(try client.send("GET", "d") == bulk("0.1"))
        // Under redis.setresp(3) a map is {map={...}} and a double {double=...}.
        #expect(try client.send("EVAL", "redis.setresp(3); return redis.call('hgetall', 'h').map.f", "0") == bulk("v"))
        #expect(try client.send("EVAL", "redis.setresp(3); return redis.call('hgetall', 'h')", "0")
                == .array([bulk("f"), bulk("v")]))
        _ = try client.send("ZADD", "z", "1.5", "m")
        #expect(try client.send("EVAL", "redis.setresp(3); return redis.call('zscore', 'z', 'm').double * 2", "0") == .integer(3))
    }

    @Test func resp3ClientsGetResp3Types() throws {
        let client = try TestNode().connect()
        _ = try client.send("HELLO", "3")
        _ = try client.send("HSET", "h", "f", "v")
        // Booleans: a RESP2 script's false is a null; after setresp(3) they are RESP3 booleans.
        #expect(try client.send("EVAL", "return false", "0") == .null)
        #expect(try client.send("EVAL", "redis.setresp(3); return false", "0") == .boolean(false))
        #expect(try client.send("EVAL", "redis.setresp(3); return true", "0") == .boolean(true))
        #expect(try client.send("EVAL", "redis.setresp(3); return redis.call('hgetall', 'h')", "0") == .map([bulk("f"), bulk("v")]))
        #expect(try client.send("EVAL", "return {double=2.5}", "0") == .double(2.5))
    }

    @Test func redisCallFollowsTheScriptRules() throws {
        let client = try TestNode().connect()
        func error(_ script: String) throws -> String {
            try client.send("EVAL", script, "0").text ?? ""
        }
        #expect(try error("return redis.call('nosuch')").hasPrefix("ERR Unknown Redis command called from script script: "))
        #expect(try error("return redis.call('get')").hasPrefix("ERR Wrong number of args calling Redis command from script"))
        #expect(try error("return redis.call('multi')").hasPrefix("ERR This Redis command is not allowed from script"))
        #expect(try error("return redis.call('subscribe', 'c')").hasPrefix("ERR This Redis command is not allowed from script"))
        #expect(try error("return redis.call('client', 'list')").hasPrefix("ERR This Redis command is not allowed from script"))
        #expect(try error("return redis.call('cluster', 'reset', 'hard')").hasPrefix("ERR This Redis command is not allowed from script"))
        #expect(try error("return redis.call('eval', 'return 1', 0)").hasPrefix("ERR This Redis command is not allowed from script"))
        #expect(try error("return redis.call('set', 'k', {})").hasPrefix("ERR Lua redis lib command arguments must be strings or integers"))
        // redis.call raises the command's error, with where it happened; redis.pcall returns it.
        _ = try client.send("SET", "s", "text")
        let raised = try error("return redis.call('incr', 's')")
        #expect(raised.hasPrefix("ERR value is not an integer or out of range script: "))
        #expect(raised.hasSuffix(", on @user_script:1."))
        #expect(try client.send("EVAL", "return redis.pcall('incr', 's')", "0") == .error("ERR value is not an integer or out of range"))
        // Lua's pcall catches it as its message.
        #expect(try client.send("EVAL", "local ok, e = pcall(function() redis.call('nosuch') end) return {tostring(ok), e}", "0")
                == .array([bulk("false"), bulk("ERR Unknown Redis command called from script")]))
        #expect(try error("error('boom')").hasPrefix("ERR user_script:1: boom script: "))
        #expect(try error("return 'unfinished").hasPrefix("ERR Error compiling script (new function): user_script:1: unfinished string"))
        // A set sorted BY a constant is ordered for a script, as redis orders it.
        _ = try client.send("SADD", "set", "b", "aa", "c", "a")
        #expect(try client.send("EVAL", "return redis.call('sort', KEYS[1], 'by', '_')", "1", "set")
                == .array([bulk("a"), bulk("aa"), bulk("b"), bulk("c")]))
        // Blocking commands do not block inside a script.
        #expect(try client.send("EVAL", "return redis.call('blpop', 'nolist', 0)", "0") == .null)
    }

    @Test func globalsAndLibrariesAreProtected() throws {
        let client = try TestNode().connect()
        #expect(try client.send("EVAL", "return undefinedname", "0").text?
                    .hasPrefix("ERR user_script:1: Script attempted to access nonexistent global variable 'undefinedname'") == true)
        #expect(try client.send("EVAL", "leaked = 1", "0").text?.contains("Attempt to modify a readonly table") == true)
        #expect(try client.send("EVAL", "redis.call = nil", "0").text?.contains("Attempt to modify a readonly table") == true)
        #expect(try client.send("EVAL", "string.len = nil", "0").text?.contains("Attempt to modify a readonly table") == true)
        for name in ["loadfile", "dofile", "print"] {
            #expect(try client.send("EVAL", "return \(name)", "0").text?.contains("nonexistent global variable '\(name)'") == true)
        }
        #expect(try client.send("EVAL", "setmetatable(_G, {})", "0").text?.contains("Attempt to modify a readonly table") == true)
        #expect(try client.send("EVAL", "getmetatable(_G).__index = {}", "0").text?.contains("Attempt to modify a readonly table") == true)
        // Precompiled chunks are refused; text chunks run in the scripts' protected environment.
        #expect(try client.send("EVAL", "return loadstring(string.dump(function() return 1 end))()", "0").text?
                    .contains("attempt to call a nil value") == true)
        #expect(try client.send("EVAL", "return loadstring('return 1 + 1')()", "0") == .integer(2))
        #expect(try client.send("EVAL", "loadstring('sneaky = 1')()", "0").text?.contains("Attempt to modify a readonly table") == true)
        // The libraries redis loads are there.
        #expect(try client.send("EVAL", "return cjson.encode({1, 2})", "0") == bulk("[1,2]"))
        #expect(try client.send("EVAL", "return cjson.decode('{\"a\":7}').a", "0") == .integer(7))
        #expect(try client.send("EVAL", "return bit.bxor(5, 3)", "0") == .integer(6))
        #expect(try client.send("EVAL", "return redis.sha1hex('abc')", "0") == bulk("a9993e364706816aba3e25717850c26c9cd0d89d"))
        #expect(try client.send("EVAL", "return string.format('%d-%s', 7, table.concat({'a', 'b'}))", "0") == bulk("7-ab"))
        #expect(try client.send("EVAL", "return cmsgpack.unpack(cmsgpack.pack({1, 'x'}))[2]", "0") == bulk("x"))
        #expect(try client.send("EVAL", "return struct.unpack('>I2', struct.pack('>I2', 513))", "0") == .integer(513))
    }

    @Test func theScriptCache() throws {
        let client = try TestNode().connect()
        let body = "return 'cached'"
        let sha = ScriptEngine.sha1(Array(body.utf8))
        #expect(try client.send("SCRIPT", "LOAD", body) == bulk(sha))
        let memory = try client.send("INFO", "memory").text ?? ""
        #expect(memory.contains("number_of_cached_scripts:1\r\n"))
        #expect(memory.contains("used_memory_scripts_eval:\(body.utf8.count)\r\n"))
        // INFO inside a script reads these figures without the engine's lock, which the script holds.
        #expect(try client.send("EVAL", "return redis.call('info', 'memory')", "0").text?.contains("number_of_cached_scripts:2") == true)
        #expect(try client.send("EVALSHA", sha, "0") == bulk("cached"))
        #expect(try client.send("EVALSHA", sha.uppercased(), "0") == bulk("cached"))
        #expect(try client.send("SCRIPT", "EXISTS", sha, "0000000000000000000000000000000000000000") == .array([.integer(1), .integer(0)]))
        #expect(try client.send("SCRIPT", "FLUSH") == .simple("OK"))
        #expect(try client.send("EVALSHA", sha, "0") == .error("NOSCRIPT No matching script. Please use EVAL."))
        // EVAL caches what it runs.
        #expect(try client.send("EVAL", body, "0") == bulk("cached"))
        #expect(try client.send("EVALSHA_RO", sha, "0") == bulk("cached"))
        #expect(try client.send("EVALSHA", "short", "0") == .error("NOSCRIPT No matching script. Please use EVAL."))
        #expect(try client.send("EVAL", body, "-1") == .error("ERR Number of keys can't be negative"))
        #expect(try client.send("EVAL", body, "2", "a") == .error("ERR Number of keys can't be greater than number of args"))
        #expect(try client.send("EVAL", body, "x") == .error("ERR value is not an integer or out of range"))
        #expect(try client.send("SCRIPT", "KILL") == .error("NOTBUSY No scripts in execution right now."))
        #expect(try client.send("SCRIPT", "FLUSH", "LATER") == .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"))
    }

    @Test func readOnlyScripts() throws {
        let client = try TestNode().connect()
        _ = try client.send("SET", "k", "v")
        #expect(try client.send("EVAL_RO", "return redis.call('get', KEYS[1])", "1", "k") == bulk("v"))
        #expect(try client.send("EVAL_RO", "return redis.call('del', KEYS[1])", "1", "k").text?
                    .hasPrefix("ERR Write commands are not allowed from read-only scripts.") == true)
        #expect(try client.send("EVAL", "#!lua flags=no-writes\nreturn redis.call('del', 'k')", "0").text?
                    .hasPrefix("ERR Write commands are not allowed from read-only scripts.") == true)
        #expect(try client.send("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0") == bulk("v"))
        #expect(try client.send("EVAL", "#!lua flags=bogus\nreturn 1", "0") == .error("ERR Unexpected flag in script shebang: bogus"))
        #expect(try client.send("EVAL", "#!python\nreturn 1", "0") == .error("ERR Unexpected engine in script shebang: #!python"))
        // Line numbers count the shebang line.
        #expect(try client.send("EVAL", "#!lua\nerror('x')", "0").text?.hasPrefix("ERR user_script:2: x") == true)
        #expect(try client.send("EXISTS", "k") == .integer(1))
    }

    @Test func aScriptsSelectIsItsOwn() throws {
        let client = try TestNode().connect()
        #expect(try client.send("EVAL", "redis.call('select', 3); return redis.call('set', 'in3', 'x')", "0") == .simple("OK"))
        #expect(try client.send("EXISTS", "in3") == .integer(0))
        _ = try client.send("SELECT", "3")
        #expect(try client.send("GET", "in3") == bulk("x"))
    }

    @Test func writesReachReplicasAsOneTransactionOfCommands() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        _ = try client.send("EVAL", "redis.call('set', KEYS[1], ARGV[1]); redis.call('incr', 'n'); return redis.call('get', 'n')", "1", "k", "v")
        // The commands as the script called them.
        #expect(try recording.recorded() == [["MULTI"], ["SELECT", "0"], ["set", "k", "v"], ["incr", "n"], ["EXEC"]])
        // A script that only reads records nothing; EVAL inside MULTI is part of EXEC's one transaction.
        _ = try client.send("EVAL", "return redis.call('get', 'k')", "0")
        #expect(try recording.recorded() == [])
        _ = try client.send("MULTI")
        _ = try client.send("EVAL", "return redis.call('del', 'k')", "0")
        _ = try client.send("SET", "after", "1")
        #expect(try client.send("EXEC") == .array([.integer(1), .simple("OK")]))
        #expect(try recording.recorded() == [["MULTI"], ["del", "k"], ["SET", "after", "1"], ["EXEC"]])
    }

    @Test func aScriptsPushWakesABlockedClient() throws {
        let node = TestNode()
        let waiter = try node.connect()
        let writer = try node.connect()
        try waiter.write("BLPOP", "queue", "0")
        #expect(try waiter.nextReply() == nil)
        #expect(try writer.send("EVAL", "return redis.call('rpush', KEYS[1], 'job')", "1", "queue") == .integer(1))
        #expect(try waiter.nextReply() == .array([bulk("queue"), bulk("job")]))
        #expect(try writer.send("LLEN", "queue") == .integer(0))
    }

    @Test func overMaxmemoryAScriptMayReadButNotGrow() throws {
        let client = try TestNode().connect()
        _ = try client.send("SET", "k", "v")
        _ = try client.send("CONFIG", "SET", "maxmemory", "1")
        #expect(try client.send("EVAL", "return redis.call('get', 'k')", "0") == bulk("v"))
        #expect(try client.send("EVAL", "return redis.call('set', 'x', 'y')", "0").text?
                    .hasPrefix("OOM command not allowed when used memory > 'maxmemory'.") == true)
        // A command that frees memory is allowed, and after a first write the script is not stopped midway.
        #expect(try client.send("EVAL", "redis.call('del', 'k'); return redis.call('set', 'x', 'y')", "0") == .simple("OK"))
        #expect(try client.send("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'z', 'y')", "0") == .simple("OK"))
        // With a shebang (and no allow-oom or no-writes) the script is refused before it runs.
        #expect(try client.send("EVAL", "#!lua\nreturn 1", "0").text?.hasPrefix("OOM command not allowed") == true)
        #expect(try client.send("EVAL", "#!lua flags=no-writes\nreturn 1", "0") == .integer(1))
    }

    @Test func errorStatisticsCountEachErrorOnce() throws {
        let client = try TestNode().connect()
        _ = try client.send("SET", "s", "text")
        _ = try client.send("CONFIG", "RESETSTAT")
        #expect(try client.send("LPUSH", "s", "x").isError)
        #expect(try client.send("NOSUCH").isError)
        // A failed redis.call counts once (for its command), not again for the script's error reply.
        #expect(try client.send("EVAL", "return redis.call('incr', 's')", "0").isError)
        #expect(try client.send("EVAL", "return redis.call('nosuch')", "0").isError)
        // A caught one is not the script's error: the script succeeds.
        #expect(try client.send("EVAL", "redis.pcall('incr', 's'); return 1", "0") == .integer(1))
        #expect(try client.send("EVAL", "return redis.error_reply('MY_CODE boom')", "0") == .error("MY_CODE boom"))
        let errorStats = try client.send("INFO", "errorstats").text ?? ""
        #expect(errorStats.contains("errorstat_ERR:count=4\r\n"), "\(errorStats)")
        #expect(errorStats.contains("errorstat_MY_CODE:count=1\r\n"))
        #expect(errorStats.contains("errorstat_WRONGTYPE:count=1\r\n"))
        #expect(try client.send("INFO", "stats").text?.contains("total_error_replies:6\r\n") == true)
        let commandStats = try client.send("INFO", "commandstats").text ?? ""
        let evalLine = commandStats.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_eval:") } ?? ""
        #expect(evalLine.hasPrefix("cmdstat_eval:calls=4,"))
        #expect(evalLine.hasSuffix("rejected_calls=0,failed_calls=3"))
        #expect(commandStats.contains("cmdstat_incr:calls=2,"))
        _ = try client.send("CONFIG", "RESETSTAT")
        #expect(try client.send("INFO", "errorstats").text?.contains("errorstat_") == false)
    }

    @Test func commandMetadata() throws {
        let client = try TestNode().connect()
        let info = try client.send("COMMAND", "INFO", "eval", "script")
        #expect(info.elements?.count == 2)
        #expect(try client.send("SCRIPT", "HELP").elements?.first == .simple("SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
        #expect(try client.send("SCRIPT", "NOSUCH") == .error("ERR unknown subcommand 'NOSUCH'. Try SCRIPT HELP."))
    }
}

/// A big number with line breaks keeps the reply one line: they become spaces, in both protocols (redis sdsmapchars).
struct ScriptBigNumberTests {
    @Test func lineBreaksBecomeSpaces() throws {
        let client = try TestNode().connect()
        #expect(try client.send("EVAL", "return {big_number='123\\r\\n123'}", "0") == .string("123  123"))
        #expect(try client.send("PING") == .simple("PONG"))
    }
}

/// TIME answers the time its command started, and inside a script or EXEC that of the script or EXEC (redis's
/// cached time): a script sees one time throughout.
struct CommandTimeTests {
    @Test func timeIsTheCommandsStartAndAScriptsOwn() throws {
        let node = TestNode()
        let client = try node.connect()
        let start = node.clock.nowMicroseconds()
        #expect(try client.send("TIME").strings == [String(start / 1_000_000), String(start % 1_000_000)])
        // The script's calls to TIME around a DEBUG SLEEP (which moves the manual clock) see the script's start.
        try client.send("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1")
        let times = try client.send(
            "EVAL", "local a = redis.call('TIME') redis.call('DEBUG', 'SLEEP', 0.5) local b = redis.call('TIME') return {a[2], b[2]}", "0")
        #expect(times.strings?.count == 2 && times.strings?.first == times.strings?.last)
        node.advance(milliseconds: 1500)
        let later = node.clock.nowMicroseconds()
        #expect(try client.send("TIME").strings == [String(later / 1_000_000), String(later % 1_000_000)])
    }
}

/// redis.acl_check_cmd: whether the script's user may run a command on given keys, without running it or logging.
struct ScriptACLCheckTests {
    @Test func answersForTheCallersUser() throws {
        let node = TestNode()
        let admin = try node.connect()
        let client = try node.connect()
        try admin.send("ACL", "SETUSER", "bob", "on", "nopass", "+set", "+eval", "~xx")
        #expect(try client.send("AUTH", "bob", "any") == .simple("OK"))
        #expect(try client.send("EVAL", "return redis.acl_check_cmd('set','xx',1)", "1", "xx") == .integer(1))
        #expect(try client.send("EVAL", "return redis.acl_check_cmd('hset','xx','f',1)", "1", "xx") == .null)
        #expect(try client.send("EVAL", "return redis.acl_check_cmd('set','yy',1)", "0") == .null)
        #expect(try client.send("EVAL", "return redis.acl_check_cmd('invalid-cmd','arg')", "0").text?.hasPrefix(
            "ERR Invalid command passed to redis.acl_check_cmd()") == true)
        // Nothing was logged: only checked.
        #expect(try admin.send("ACL", "LOG") == .array([]))
        #expect(try admin.send("EVAL", "return redis.acl_check_cmd('hset','xx','f',1)", "0") == .integer(1))
    }
}
