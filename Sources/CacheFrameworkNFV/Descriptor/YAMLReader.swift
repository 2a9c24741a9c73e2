// Typed reading of a composed YAML node tree (Yams `Node`) that remembers the field path and the line of every
// node, so each descriptor error points at the line and field to fix.

import Yams

/// A YAML node together with its field path.
struct YAMLField {
    let node: Node
    let path: String

    var line: Int { node.mark?.line ?? 0 }
    var column: Int { node.mark?.column ?? 0 }

    func error(_ kind: DescriptorError.Kind, _ message: String) -> DescriptorError {
        DescriptorError(kind, line: line, column: column, path: path, message)
    }

    /// The node as a mapping whose keys must all be in `allowed`.
    func mapping(allowed: [String]) throws(DescriptorError) -> YAMLMapping {
        guard case .mapping(let mapping) = node else {
            throw error(.wrongType, "expected a mapping (key: value lines), found \(kindName)")
        }
        var entries: [String: YAMLField] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            let field = YAMLField(node: value, path: path.isEmpty ? name : "\(path).\(name)")
            guard allowed.contains(name) else {
                let suggestion = allowed.min { distance($0, name) < distance($1, name) }
                let hint = suggestion.map { distance($0, name) <= 3 ? "; did you mean '\($0)'?" : "" } ?? ""
                throw DescriptorError(
                    .unknownField, line: key.mark?.line ?? 0, column: key.mark?.column ?? 0, path: field.path,
                    "unknown field '\(name)'\(hint) (allowed: \(allowed.joined(separator: ", ")))")
            }
            entries[name] = field
        }
        return YAMLMapping(field: self, entries: entries)
    }

    /// The node as a mapping with free keys (such as VDU id → count).
    func freeMapping() throws(DescriptorError) -> [(key: String, field: YAMLField)] {
        guard case .mapping(let mapping) = node else {
            throw error(.wrongType, "expected a mapping (key: value lines), found \(kindName)")
        }
        return mapping.map { (key: $0.key.string ?? "", field: YAMLField(node: $0.value, path: "\(path).\($0.key.string ?? "")")) }
    }

    /// The node as a list.
    func list() throws(DescriptorError) -> [YAMLField] {
        guard case .sequence(let sequence) = node else {
            throw error(.wrongType, "expected a list (lines starting with '- '), found \(kindName)")
        }
        return sequence.enumerated().map { YAMLField(node: $0.element, path: "\(path)[\($0.offset)]") }
    }

    func string() throws(DescriptorError) -> String {
        guard case .scalar(let scalar) = node else { throw error(.wrongType, "expected text, found \(kindName)") }
        return scalar.string
    }

    func identifier() throws(DescriptorError) -> String {
        let value = try string()
        guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw error(.invalidValue, "'\(value)' is not an id: use letters, digits, '-', '_' and '.'")
        }
        return value
    }

    func int() throws(DescriptorError) -> Int {
        guard case .scalar = node, let value = node.int else { throw error(.wrongType, "expected a whole number, found \(describe)") }
        return value
    }

    func double() throws(DescriptorError) -> Double {
        guard case .scalar = node, let value = node.float ?? node.int.map(Double.init) else {
            throw error(.wrongType, "expected a number, found \(describe)")
        }
        return value
    }

    func bool() throws(DescriptorError) -> Bool {
        guard case .scalar = node, let value = node.bool else { throw error(.wrongType, "expected true or false, found \(describe)") }
        return value
    }

    func stringList() throws(DescriptorError) -> [String] {
        var result: [String] = []
        for item in try list() { result.append(try item.string()) }
        return result
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_: E.Type) throws(DescriptorError) -> E where E.RawValue == String {
        let text = try string()
        guard let value = E(rawValue: text) else {
            throw error(.invalidEnum, "'\(text)' is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    private var kindName: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let scalar): "'\(scalar.string)'"
        case .alias: "an alias"
        }
    }

    private var describe: String { kindName }
}

/// A mapping's checked entries.
struct YAMLMapping {
    let field: YAMLField
    let entries: [String: YAMLField]

    func optional(_ key: String) -> YAMLField? {
        guard let entry = entries[key] else { return nil }
        if case .scalar(let scalar) = entry.node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null",
           scalar.style == .plain {
            return nil
        }
        return entry
    }

    func required(_ key: String) throws(DescriptorError) -> YAMLField {
        guard let entry = optional(key) else {
            throw DescriptorError(
                .missingField, line: field.line, column: field.column, path: "\(field.path).\(key)",
                "required field '\(key)' is missing")
        }
        return entry
    }
}

/// Levenshtein distance, for "did you mean" hints.
private func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// Composes YAML text into a node, turning Yams' errors into a `.syntax` descriptor error with the line.
func composeYAML(_ text: String, root: String) throws(DescriptorError) -> YAMLField {
    do {
        guard let node = try Yams.compose(yaml: text) else {
            throw DescriptorError(.missingField, line: 1, path: root, "the document is empty")
        }
        return YAMLField(node: node, path: "")
    } catch let error as DescriptorError {
        throw error
    } catch let error as YamlError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            throw DescriptorError(.syntax, line: mark.line, column: mark.column, path: root, "YAML syntax error: \(problem)")
        default:
            throw DescriptorError(.syntax, line: 0, path: root, "YAML error: \(error)")
        }
    } catch {
        throw DescriptorError(.syntax, line: 0, path: root, "YAML error: \(error)")
    }
}
