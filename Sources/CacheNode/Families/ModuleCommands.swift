// MODULE LIST | LOAD | LOADEX | UNLOAD | HELP (redis module.c): cache-node has no module API, so no module is ever
// loaded. LIST answers the empty list admin tools expect, and LOAD and UNLOAD fail with redis's own errors, as for a
// module file that cannot be loaded, rather than as an unknown command.
import Logging
import RESPServer

extension CommandTable {
    static let moduleCommands: [CommandSpec] = [
        CommandSpec("module", arity: -2, flags: [.admin, .noScript], group: .server,
                    summary: "A container for module commands.", since: "4.0.0",
                    subcommands: CommandSpec.subcommands(of: "module", group: .server, since: "4.0.0", [
                        ("list", 2, [.admin, .noScript], "Returns all loaded modules."),
                        ("load", -3, [.admin, .noScript], "Loads a module."),
                        ("loadex", -3, [.admin, .noScript], "Loads a module using extended parameters."),
                        ("unload", 3, [.admin, .noScript], "Unloads a module."),
                        ("help", 2, [.admin, .noScript], "Returns helpful text about the different subcommands."),
                    ])) { context, reply throws(CommandError) in
            let arguments = context.arguments
            switch arguments.lowercased(1) {
            case "list":
                reply.arrayHeader(0)
            case "load", "loadex":
                ModuleFamily.logger.warning(
                    "Module \(arguments.string(2)) failed to load: cache-node has no module support (MODULE \(arguments.string(1).uppercased())).")
                throw CommandError("Error loading the extension. Please check the server logs.")
            case "unload":
                throw CommandError("Error unloading module: no such module with that name")
            case "help":
                reply.simpleStringLines([
                    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "LIST",
                    "    Return a list of loaded modules.",
                    "LOAD <path> [<arg> ...]",
                    "    Load a module library from <path>, passing to it any optional arguments.",
                    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
                    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
                    "UNLOAD <name>",
                    "    Unload a module.",
                    "HELP",
                    "    Print this help.",
                ])
            default:
                throw .subcommandSyntax(arguments.string(1), of: "module")
            }
        },
    ]
}

/// MODULE's log.
enum ModuleFamily {
    static let logger = Logger(label: "cache-node.modules")
}
