// cache-node: a Redis-compatible cache server. Takes redis-server's arguments: an optional config file path,
// then `--directive value` flags (`--port 6380 --save '' --maxmemory 100mb`).
import CacheNode
import Foundation
import Logging

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "--version" || arguments.first == "-v" {
    print("cache-node v=\(CacheNodeVersion.current) (redis \(7).2 compatible)")
    exit(0)
}
if arguments.first == "--help" || arguments.first == "-h" {
    print("""
    Usage: cache-node [/path/to/cache-node.conf] [options]
           cache-node -v or --version
           cache-node -h or --help

    Options are redis.conf directives written as flags, for example:
           cache-node --port 7777
           cache-node --bind 127.0.0.1 --requirepass secret --maxmemory 100mb --maxmemory-policy allkeys-lru
           cache-node /etc/cache-node.conf --loglevel verbose --save ''
    """)
    exit(0)
}

// Like redis, raise the open-files limit as far as allowed so many clients can connect.
var openFiles = rlimit()
if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &openFiles) == 0 && openFiles.rlim_cur < openFiles.rlim_max {
    openFiles.rlim_cur = openFiles.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &openFiles)
}

let configuration: NodeConfiguration
do {
    configuration = try NodeConfiguration.parse(arguments: arguments)
} catch {
    FileHandle.standardError.write(Data("\n*** FATAL CONFIG FILE ERROR ***\n\(error)\n".utf8))
    exit(1)
}

let level: Logger.Level
switch configuration.logLevel {
case "debug": level = .debug
case "verbose": level = .info
case "warning": level = .warning
case "nothing": level = .critical
default: level = .notice
}
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardOutput(label: label)
    handler.logLevel = level
    return handler
}
var logger = Logger(label: "cache-node")
logger.logLevel = level

do {
    try await CacheNodeServer.run(configuration: configuration, logger: logger) { port in
        // The line redis-server prints; scripts and test harnesses wait for it.
        FileHandle.standardOutput.write(Data("Ready to accept connections tcp on port \(port)\n".utf8))
    }
} catch {
    logger.critical("cache-node stopped: \(error)")
    exit(1)
}
