// The geo family (redis geo.c, geohash.c, geohash_helper.c): points stored in a sorted set whose scores are 52-bit
// interleaved geohashes (26 bits of latitude and 26 of longitude over redis's Mercator-safe latitude range), so
// GEOADD's scores, GEOHASH's strings and every search answer are redis's. A search covers the shape with the geohash
// box of the centre and its eight neighbours at a step chosen from the radius, reads each box as a score range of
// the sorted set, and keeps the points truly inside the circle or rectangle (haversine distances on redis's
// Earth radius).
import CacheStore
import Foundation
import NIOCore
import RESPServer

extension CommandTable {
    static let geoCommands: [CommandSpec] = [
        // GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]
        CommandSpec("geoadd", arity: -5, flags: [.write, .denyOOM], keys: .first, group: .geo,
                    summary: "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
                    since: "3.2.0") { context, reply throws(CommandError) in
            try GeoFamily.add(&context, &reply)
        },
        // GEOPOS key [member [member ...]]
        CommandSpec("geopos", arity: -2, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Returns the longitude and latitude of members from a geospatial index.", since: "3.2.0") {
            context, reply throws(CommandError) in
            try GeoFamily.positions(context, &reply)
        },
        // GEOHASH key [member [member ...]]
        CommandSpec("geohash", arity: -2, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Returns members from a geospatial index as geohash strings.", since: "3.2.0") {
            context, reply throws(CommandError) in
            try GeoFamily.hashes(context, &reply)
        },
        // GEODIST key member1 member2 [M | KM | FT | MI]
        CommandSpec("geodist", arity: -4, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Returns the distance between two members of a geospatial index.", since: "3.2.0") {
            context, reply throws(CommandError) in
            try GeoFamily.distance(context, &reply)
        },
        // GEORADIUS key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH]
        //   [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
        CommandSpec("georadius", arity: -6, flags: [.write, .denyOOM], keys: .custom(GeoFamily.radiusKeys), group: .geo,
                    summary: "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.",
                    since: "3.2.0") { context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 1, mode: .radiusFromCoordinates, allowsStore: true)
        },
        // GEORADIUSBYMEMBER key member radius <M | KM | FT | MI> [...as GEORADIUS]
        CommandSpec("georadiusbymember", arity: -5, flags: [.write, .denyOOM], keys: .custom(GeoFamily.radiusKeys), group: .geo,
                    summary: "Queries a geospatial index for members within a distance from a member, optionally stores the result.",
                    since: "3.2.0") { context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 1, mode: .radiusFromMember, allowsStore: true)
        },
        CommandSpec("georadius_ro", arity: -6, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Returns members from a geospatial index that are within a distance from a coordinate.",
                    since: "3.2.10") { context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 1, mode: .radiusFromCoordinates, allowsStore: false)
        },
        CommandSpec("georadiusbymember_ro", arity: -5, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Returns members from a geospatial index that are within a distance from a member.",
                    since: "3.2.10") { context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 1, mode: .radiusFromMember, allowsStore: false)
        },
        // GEOSEARCH key <FROMMEMBER member | FROMLONLAT longitude latitude> <BYRADIUS radius <M | KM | FT | MI> |
        //   BYBOX width height <M | KM | FT | MI>> [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
        CommandSpec("geosearch", arity: -7, flags: [.readonly], keys: .first, group: .geo,
                    summary: "Queries a geospatial index for members inside an area of a box or a circle.", since: "6.2.0") {
            context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 1, mode: .search, allowsStore: false)
        },
        // GEOSEARCHSTORE destination source <FROMMEMBER ... | FROMLONLAT ...> <BYRADIUS ... | BYBOX ...> [ASC | DESC]
        //   [COUNT count [ANY]] [STOREDIST]
        CommandSpec("geosearchstore", arity: -8, flags: [.write, .denyOOM], keys: .range(first: 1, last: 2, step: 1), group: .geo,
                    summary: "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.",
                    since: "6.2.0") { context, reply throws(CommandError) in
            try GeoFamily.search(&context, &reply, source: 2, mode: .searchStore, allowsStore: true)
        },
    ]
}

/// Geohash encoding and the geometry of searches (redis geohash.c and geohash_helper.c).
enum GeoHash {
    static let stepMax = 26
    static let latitudeMin = -85.05112878, latitudeMax = 85.05112878
    static let longitudeMin = -180.0, longitudeMax = 180.0
    static let earthRadius = 6372797.560856
    static let mercatorMax = 20037726.37

    /// Interleaved bits at a precision of `step` bits per coordinate; step 0 and bits 0 is "no box".
    struct Bits: Equatable {
        var bits: UInt64
        var step: Int
        static let zero = Bits(bits: 0, step: 0)
        var isZero: Bool { bits == 0 && step == 0 }
    }

    struct Area {
        var longitude: ClosedRange<Double>
        var latitude: ClosedRange<Double>
    }

    typealias CoordinateRange = (min: Double, max: Double)
    static let longitudeRange: CoordinateRange = (longitudeMin, longitudeMax)
    static let latitudeRange: CoordinateRange = (latitudeMin, latitudeMax)

    static func interleave(_ xlow: UInt32, _ ylow: UInt32) -> UInt64 {
        let b: [UInt64] = [0x5555_5555_5555_5555, 0x3333_3333_3333_3333, 0x0F0F_0F0F_0F0F_0F0F, 0x00FF_00FF_00FF_00FF,
                           0x0000_FFFF_0000_FFFF]
        var x = UInt64(xlow), y = UInt64(ylow)
        for (shift, mask) in zip([16, 8, 4, 2, 1] as [UInt64], b.reversed()) {
            x = (x | (x << shift)) & mask
            y = (y | (y << shift)) & mask
        }
        return x | (y << 1)
    }

    static func deinterleave(_ interleaved: UInt64) -> UInt64 {
        let b: [UInt64] = [0x5555_5555_5555_5555, 0x3333_3333_3333_3333, 0x0F0F_0F0F_0F0F_0F0F, 0x00FF_00FF_00FF_00FF,
                           0x0000_FFFF_0000_FFFF, 0x0000_0000_FFFF_FFFF]
        let s: [UInt64] = [0, 1, 2, 4, 8, 16]
        var x = interleaved, y = interleaved >> 1
        for index in 0..<6 {
            x = (x | (x >> s[index])) & b[index]
            y = (y | (y >> s[index])) & b[index]
        }
        return x | (y << 32)
    }

    /// The geohash of a point at `step` bits per coordinate over the given ranges; `nil` outside them.
    static func encode(longitude: Double, latitude: Double, step: Int,
                       longitudeRange: CoordinateRange = longitudeRange, latitudeRange: CoordinateRange = latitudeRange) -> Bits? {
        guard step > 0 && step <= 32 else { return nil }
        guard longitude <= longitudeMax && longitude >= longitudeMin && latitude <= latitudeMax && latitude >= latitudeMin,
              latitude >= latitudeRange.min && latitude <= latitudeRange.max,
              longitude >= longitudeRange.min && longitude <= longitudeRange.max
        else { return nil }
        let scale = Double(UInt64(1) << UInt64(step))
        let latitudeOffset = (latitude - latitudeRange.min) / (latitudeRange.max - latitudeRange.min) * scale
        let longitudeOffset = (longitude - longitudeRange.min) / (longitudeRange.max - longitudeRange.min) * scale
        return Bits(bits: interleave(UInt32(truncatingIfNeeded: UInt64(latitudeOffset)), UInt32(truncatingIfNeeded: UInt64(longitudeOffset))),
                    step: step)
    }

    /// The box a geohash names.
    static func decode(_ hash: Bits) -> Area? {
        guard !hash.isZero else { return nil }
        let separated = deinterleave(hash.bits)
        let latitudeScale = latitudeRange.max - latitudeRange.min
        let longitudeScale = longitudeRange.max - longitudeRange.min
        let latitudeCell = Double(UInt32(truncatingIfNeeded: separated))
        let longitudeCell = Double(UInt32(truncatingIfNeeded: separated >> 32))
        let cells = Double(UInt64(1) << UInt64(hash.step))
        return Area(
            longitude: (longitudeRange.min + longitudeCell / cells * longitudeScale)...(longitudeRange.min + (longitudeCell + 1) / cells * longitudeScale),
            latitude: (latitudeRange.min + latitudeCell / cells * latitudeScale)...(latitudeRange.min + (latitudeCell + 1) / cells * latitudeScale))
    }

    /// The centre of the box a 52-bit score names, clamped to the valid ranges.
    static func decode(score: Double) -> (longitude: Double, latitude: Double)? {
        guard let area = decode(Bits(bits: UInt64(score), step: stepMax)) else { return nil }
        let longitude = min(max((area.longitude.lowerBound + area.longitude.upperBound) / 2, longitudeMin), longitudeMax)
        let latitude = min(max((area.latitude.lowerBound + area.latitude.upperBound) / 2, latitudeMin), latitudeMax)
        return (longitude, latitude)
    }

    /// A geohash at `step` shifted left to 52 bits (the sorted set's score).
    static func align52(_ hash: Bits) -> UInt64 {
        hash.bits << UInt64(52 - hash.step * 2)
    }

    /// Moves a box one cell east or west (`longitude`: the odd bits) or north or south (the even bits), wrapping
    /// as redis's geohash_move_x and geohash_move_y do.
    private static func move(_ hash: inout Bits, _ direction: Int, longitude: Bool) {
        guard direction != 0 else { return }
        let own: UInt64 = longitude ? 0xAAAA_AAAA_AAAA_AAAA : 0x5555_5555_5555_5555
        let other = ~own
        var moving = hash.bits & own
        let kept = hash.bits & other
        let zz = other >> UInt64(64 - hash.step * 2)
        if direction > 0 {
            moving = moving &+ (zz &+ 1)
        } else {
            moving |= zz
            moving = moving &- (zz &+ 1)
        }
        moving &= own >> UInt64(64 - hash.step * 2)
        hash.bits = moving | kept
    }

    /// The box and its eight neighbours, in redis's search order: centre, N, S, E, W, NE, NW, SE, SW.
    static func boxes(around hash: Bits) -> [Bits] {
        let moves: [(Int, Int)] = [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1)]
        return moves.map { dx, dy in
            var moved = hash
            move(&moved, dx, longitude: true)
            move(&moved, dy, longitude: false)
            return moved
        }
    }

    static func estimateSteps(radiusMeters: Double, latitude: Double) -> Int {
        if radiusMeters == 0 { return 26 }
        var range = radiusMeters
        var step = 1
        while range < mercatorMax {
            range *= 2
            step += 1
        }
        step -= 2
        if latitude > 66 || latitude < -66 {
            step -= 1
            if latitude > 80 || latitude < -80 { step -= 1 }
        }
        return min(max(step, 1), 26)
    }

    static func radians(_ degrees: Double) -> Double { degrees * (Double.pi / 180) }
    static func degrees(_ radians: Double) -> Double { radians / (Double.pi / 180) }

    static func latitudeDistance(_ latitude1: Double, _ latitude2: Double) -> Double {
        earthRadius * abs(radians(latitude2) - radians(latitude1))
    }

    /// Haversine distance in meters.
    static func distance(_ longitude1: Double, _ latitude1: Double, _ longitude2: Double, _ latitude2: Double) -> Double {
        let lon1 = radians(longitude1), lon2 = radians(longitude2)
        let v = sin((lon2 - lon1) / 2)
        if v == 0 { return latitudeDistance(latitude1, latitude2) }
        let lat1 = radians(latitude1), lat2 = radians(latitude2)
        let u = sin((lat2 - lat1) / 2)
        let a = u * u + cos(lat1) * cos(lat2) * v * v
        return 2 * earthRadius * asin(a.squareRoot())
    }
}

/// What a search covers: a circle or an axis-aligned box around a point, in the unit's meters.
struct GeoShape {
    enum Kind {
        case radius(Double)
        case box(width: Double, height: Double)
    }

    var longitude = 0.0
    var latitude = 0.0
    var conversion = 1.0
    var kind = Kind.radius(0)

    /// The distance from the centre when the point at (`longitude`, `latitude`) is inside, else `nil`.
    func distanceIfInside(longitude: Double, latitude: Double) -> Double? {
        switch kind {
        case .radius(let radius):
            let distance = GeoHash.distance(self.longitude, self.latitude, longitude, latitude)
            return distance > radius * conversion ? nil : distance
        case .box(let width, let height):
            if GeoHash.latitudeDistance(latitude, self.latitude) > height * conversion / 2 { return nil }
            if GeoHash.distance(longitude, latitude, self.longitude, latitude) > width * conversion / 2 { return nil }
            return GeoHash.distance(self.longitude, self.latitude, longitude, latitude)
        }
    }

    /// The centre box and its neighbours to read (redis geohashCalculateAreasByShapeWGS84): zero boxes are skipped.
    func boxes() -> [GeoHash.Bits] {
        let halfHeight: Double, halfWidth: Double, radius: Double
        switch kind {
        case .radius(let r):
            (halfHeight, halfWidth, radius) = (r * conversion, r * conversion, r * conversion)
        case .box(let width, let height):
            (halfHeight, halfWidth) = (height * conversion / 2, width * conversion / 2)
            radius = (width / 2 * width / 2 + height / 2 * height / 2).squareRoot() * conversion
        }
        let latitudeDelta = GeoHash.degrees(halfHeight / GeoHash.earthRadius)
        let longitudeDeltaTop = GeoHash.degrees(halfWidth / GeoHash.earthRadius / cos(GeoHash.radians(latitude + latitudeDelta)))
        let longitudeDeltaBottom = GeoHash.degrees(halfWidth / GeoHash.earthRadius / cos(GeoHash.radians(latitude - latitudeDelta)))
        let southern = latitude < 0
        let minLongitude = southern ? longitude - longitudeDeltaBottom : longitude - longitudeDeltaTop
        let maxLongitude = southern ? longitude + longitudeDeltaBottom : longitude + longitudeDeltaTop
        let minLatitude = latitude - latitudeDelta, maxLatitude = latitude + latitudeDelta

        var steps = GeoHash.estimateSteps(radiusMeters: radius, latitude: latitude)
        var hash = GeoHash.encode(longitude: longitude, latitude: latitude, step: steps) ?? .zero
        var boxes = GeoHash.boxes(around: hash)
        // A step too fine for the area: the neighbours would not cover it.
        let north = GeoHash.decode(boxes[1]), south = GeoHash.decode(boxes[2])
        let east = GeoHash.decode(boxes[3]), west = GeoHash.decode(boxes[4])
        let decrease = (north.map { $0.latitude.upperBound < maxLatitude } ?? false)
            || (south.map { $0.latitude.lowerBound > minLatitude } ?? false)
            || (east.map { $0.longitude.upperBound < maxLongitude } ?? false)
            || (west.map { $0.longitude.lowerBound > minLongitude } ?? false)
        if steps > 1 && decrease {
            steps -= 1
            hash = GeoHash.encode(longitude: longitude, latitude: latitude, step: steps) ?? .zero
            boxes = GeoHash.boxes(around: hash)
        }
        // Neighbours the area does not reach are left out.
        if steps >= 2, let area = GeoHash.decode(hash) {
            if area.latitude.lowerBound < minLatitude { for index in [2, 8, 7] { boxes[index] = .zero } }
            if area.latitude.upperBound > maxLatitude { for index in [1, 5, 6] { boxes[index] = .zero } }
            if area.longitude.lowerBound < minLongitude { for index in [4, 8, 6] { boxes[index] = .zero } }
            if area.longitude.upperBound > maxLongitude { for index in [3, 7, 5] { boxes[index] = .zero } }
        }
        return boxes
    }
}

/// The commands' implementations.
enum GeoFamily {
    private struct Point {
        var member: CompactBytes
        var longitude: Double
        var latitude: Double
        var distance: Double
        var score: Double
    }

    enum SearchMode { case radiusFromCoordinates, radiusFromMember, search, searchStore }

    /// GEORADIUS(BYMEMBER)'s keys: the source and the last STORE or STOREDIST destination.
    @Sendable static func radiusKeys(_ arguments: CommandArguments) -> [Int] {
        var positions = arguments.count > 1 ? [1] : []
        var store: Int?
        var index = 2
        while index < arguments.count {
            if (arguments.matches(index, "store") || arguments.matches(index, "storedist")) && index + 1 < arguments.count {
                store = index + 1
                index += 2
            } else {
                index += 1
            }
        }
        if let store { positions.append(store) }
        return positions
    }

    /// The sorted set at argument `index`: `nil` if missing, WRONGTYPE for other types.
    private static func read(_ context: CommandContext, _ index: Int) throws(CommandError) -> SortedSetValue? {
        guard let value = context.db.value(context.key(index)) else { return nil }
        guard case .sortedSet(let zset) = value else { throw .wrongType }
        return zset
    }

    private static func coordinates(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> (Double, Double) {
        guard let longitude = arguments.double(index), let latitude = arguments.double(index + 1) else {
            throw CommandError("value is not a valid float")
        }
        guard longitude >= GeoHash.longitudeMin && longitude <= GeoHash.longitudeMax
                && latitude >= GeoHash.latitudeMin && latitude <= GeoHash.latitudeMax else {
            throw CommandError("invalid longitude,latitude pair \(NumberText.fixed(longitude, decimals: 6)),\(NumberText.fixed(latitude, decimals: 6))")
        }
        return (longitude, latitude)
    }

    private static func unit(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> Double {
        switch arguments.lowercased(index) {
        case "m": return 1
        case "km": return 1000
        case "ft": return 0.3048
        case "mi": return 1609.34
        default: throw CommandError("unsupported unit provided. please use M, KM, FT, MI")
        }
    }

    private static func radius(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> (radius: Double, conversion: Double) {
        guard let radius = arguments.double(index) else { throw CommandError("need numeric radius") }
        guard radius >= 0 else { throw CommandError("radius cannot be negative") }
        return (radius, try unit(arguments, index + 1))
    }

    /// A distance as redis writes it (four decimals, a bulk string in both protocols).
    private static func writeDistance(_ value: Double, _ reply: inout ReplyWriter) {
        reply.bulk(NumberText.fixed(value, decimals: 4))
    }

    /// A coordinate as redis writes it (`addReplyHumanLongDouble`: a bulk string, a double under RESP3).
    private static func writeCoordinate(_ value: Double, _ reply: inout ReplyWriter) {
        let text = RedisLongDouble.humanText(RedisLongDouble.Value(value))
        if reply.protocolVersion == .v3 {
            reply.buffer.writeStaticString(",")
            text.withBytes { _ = reply.buffer.writeBytes($0) }
            reply.buffer.writeStaticString("\r\n")
        } else {
            text.withBytes { reply.bulk($0) }
        }
    }

    // MARK: GEOADD

    static func add(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        var ifMissing = false, ifExists = false, changed = false
        var first = 2
        while first < arguments.count {
            if arguments.matches(first, "nx") { ifMissing = true }
            else if arguments.matches(first, "xx") { ifExists = true }
            else if arguments.matches(first, "ch") { changed = true }
            else { break }
            first += 1
        }
        guard (arguments.count - first) % 3 == 0, !(ifMissing && ifExists) else { throw .syntax }
        var points: [(score: Double, member: CompactBytes)] = []
        for index in stride(from: first, to: arguments.count, by: 3) {
            let (longitude, latitude) = try coordinates(arguments, index)
            let hash = GeoHash.encode(longitude: longitude, latitude: latitude, step: GeoHash.stepMax) ?? .zero
            points.append((Double(GeoHash.align52(hash)), context.bytes(index + 2)))
        }
        let key = context.key(1)
        let (added, updated) = try context.db.modify(key) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> (Int, Int) in
            let zset: SortedSetValue
            switch value {
            case nil:
                if ifExists { return (0, 0) }
                zset = SortedSetValue()
            case .sortedSet(let existing)?:
                zset = existing
            default:
                throw .wrongType
            }
            var added = 0, updated = 0
            for point in points {
                if let current = zset.score(of: point.member) {
                    if ifMissing || current == point.score { continue }
                    zset.add(point.member, score: point.score)
                    updated += 1
                } else if !ifExists {
                    zset.add(point.member, score: point.score)
                    added += 1
                }
            }
            if added + updated > 0 {
                if value == nil { value = .sortedSet(zset) }
                modified = true
            }
            return (added, updated)
        }
        if added + updated > 0 { context.notify(.sortedSet, "zadd", argument: 1) }
        if added > 0 { context.signalReady(key) }
        reply.integer(changed ? added + updated : added)
    }

    // MARK: GEOPOS / GEOHASH / GEODIST

    static func positions(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let zset = try read(context, 1)
        let arguments = context.arguments
        reply.arrayHeader(arguments.count - 2)
        for index in 2..<arguments.count {
            guard let score = zset?.score(of: context.bytes(index)), let point = GeoHash.decode(score: score) else {
                reply.nullArray()
                continue
            }
            reply.arrayHeader(2)
            writeCoordinate(point.longitude, &reply)
            writeCoordinate(point.latitude, &reply)
        }
    }

    static func hashes(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let zset = try read(context, 1)
        let arguments = context.arguments
        let alphabet = Array("0123456789bcdefghjkmnpqrstuvwxyz".utf8)
        reply.arrayHeader(arguments.count - 2)
        for index in 2..<arguments.count {
            // The standard geohash uses latitudes -90...90, not the Mercator limits the scores use.
            guard let score = zset?.score(of: context.bytes(index)), let point = GeoHash.decode(score: score),
                  let hash = GeoHash.encode(longitude: point.longitude, latitude: point.latitude, step: 26,
                                            longitudeRange: (-180, 180), latitudeRange: (-90, 90))
            else {
                reply.null()
                continue
            }
            var text: [UInt8] = []
            for position in 0..<11 {
                let digit = position == 10 ? 0 : Int((hash.bits >> UInt64(52 - (position + 1) * 5)) & 0x1F)
                text.append(alphabet[digit])
            }
            text.withUnsafeBytes { reply.bulk($0) }
        }
    }

    static func distance(_ context: CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        var conversion = 1.0
        if arguments.count == 5 {
            conversion = try unit(arguments, 4)
        } else if arguments.count > 5 {
            throw .syntax
        }
        guard let zset = try read(context, 1) else {
            reply.null()
            return
        }
        guard let first = zset.score(of: context.bytes(2)), let second = zset.score(of: context.bytes(3)),
              let a = GeoHash.decode(score: first), let b = GeoHash.decode(score: second)
        else {
            reply.null()
            return
        }
        writeDistance(GeoHash.distance(a.longitude, a.latitude, b.longitude, b.latitude) / conversion, &reply)
    }

    // MARK: searches

    /// GEORADIUS, GEORADIUSBYMEMBER, their _RO forms, GEOSEARCH and GEOSEARCHSTORE (redis georadiusGeneric).
    static func search(_ context: inout CommandContext, _ reply: inout ReplyWriter, source: Int, mode: SearchMode,
                       allowsStore: Bool) throws(CommandError) {
        let arguments = context.arguments
        let zset = try read(context, source)
        var shape = GeoShape()
        var storeIndex: Int?
        var storeDistance = false
        let optionsStart: Int
        switch mode {
        case .radiusFromCoordinates:
            optionsStart = 6
            (shape.longitude, shape.latitude) = try coordinates(arguments, 2)
            let (r, conversion) = try radius(arguments, 4)
            (shape.kind, shape.conversion) = (.radius(r), conversion)
        case .radiusFromMember:
            optionsStart = 5
            if let zset {
                guard let score = zset.score(of: context.bytes(2)), let point = GeoHash.decode(score: score) else {
                    throw CommandError("could not decode requested zset member")
                }
                (shape.longitude, shape.latitude) = point
                let (r, conversion) = try radius(arguments, 3)
                (shape.kind, shape.conversion) = (.radius(r), conversion)
            }
        case .search:
            optionsStart = 2
        case .searchStore:
            optionsStart = 3
            storeIndex = 1
        }
        let isSearch = mode == .search || mode == .searchStore
        var withDistance = false, withHash = false, withCoordinates = false
        var fromMember = false, fromCoordinates = false, byRadius = false, byBox = false
        var ascending: Bool?
        var any = false
        var count = 0
        var index = optionsStart
        while index < arguments.count {
            let remaining = arguments.count - index - 1
            if arguments.matches(index, "withdist") {
                withDistance = true
            } else if arguments.matches(index, "withhash") {
                withHash = true
            } else if arguments.matches(index, "withcoord") {
                withCoordinates = true
            } else if arguments.matches(index, "any") {
                any = true
            } else if arguments.matches(index, "asc") {
                ascending = true
            } else if arguments.matches(index, "desc") {
                ascending = false
            } else if arguments.matches(index, "count") && remaining >= 1 {
                guard let value = arguments.integer(index + 1) else { throw .notInteger }
                guard value > 0 else { throw CommandError("COUNT must be > 0") }
                count = value
                index += 1
            } else if (arguments.matches(index, "store") || arguments.matches(index, "storedist")) && remaining >= 1
                        && allowsStore && !isSearch {
                storeIndex = index + 1
                storeDistance = arguments.matches(index, "storedist")
                index += 1
            } else if arguments.matches(index, "storedist") && mode == .searchStore {
                storeDistance = true
            } else if arguments.matches(index, "frommember") && remaining >= 1 && isSearch && !fromCoordinates {
                if let zset {
                    guard let score = zset.score(of: context.bytes(index + 1)), let point = GeoHash.decode(score: score) else {
                        throw CommandError("could not decode requested zset member")
                    }
                    (shape.longitude, shape.latitude) = point
                }
                fromMember = true
                index += 1
            } else if arguments.matches(index, "fromlonlat") && remaining >= 2 && isSearch && !fromMember {
                (shape.longitude, shape.latitude) = try coordinates(arguments, index + 1)
                fromCoordinates = true
                index += 2
            } else if arguments.matches(index, "byradius") && remaining >= 2 && isSearch && !byBox {
                let (r, conversion) = try radius(arguments, index + 1)
                (shape.kind, shape.conversion) = (.radius(r), conversion)
                byRadius = true
                index += 2
            } else if arguments.matches(index, "bybox") && remaining >= 3 && isSearch && !byRadius {
                guard let width = arguments.double(index + 1) else { throw CommandError("need numeric width") }
                guard let height = arguments.double(index + 2) else { throw CommandError("need numeric height") }
                guard width >= 0 && height >= 0 else { throw CommandError("height or width cannot be negative") }
                (shape.kind, shape.conversion) = (.box(width: width, height: height), try unit(arguments, index + 3))
                byBox = true
                index += 3
            } else {
                throw .syntax
            }
            index += 1
        }
        if storeIndex != nil && (withDistance || withHash || withCoordinates) {
            throw CommandError("\(mode == .searchStore ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS") is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
        }
        if isSearch && !(fromMember || fromCoordinates) {
            throw CommandError("exactly one of FROMMEMBER or FROMLONLAT can be specified for \(arguments.string(0))")
        }
        if isSearch && !(byRadius || byBox) {
            throw CommandError("exactly one of BYRADIUS and BYBOX can be specified for \(arguments.string(0))")
        }
        if any && count == 0 { throw CommandError("the ANY argument requires COUNT argument") }

        guard let zset else {
            if let storeIndex {
                if context.db.delete(context.key(storeIndex)) { context.notify(.generic, "del", argument: storeIndex) }
                reply.integer(0)
            } else {
                reply.arrayHeader(0)
            }
            return
        }
        if count != 0 && ascending == nil && !any { ascending = true }

        // Read the boxes as score ranges, keeping the points inside the shape.
        let limit = any ? count : 0
        var points: [Point] = []
        var lastProcessed = 0
        let boxes = shape.boxes()
        for (boxIndex, box) in boxes.enumerated() where !box.isZero {
            // As redis does: a box equal to the last one read is skipped, unless that was the centre.
            if lastProcessed != 0, box == boxes[lastProcessed] { continue }
            if !points.isEmpty && limit > 0 && points.count >= limit { break }
            let minimum = Double(GeoHash.align52(box))
            let maximum = Double(GeoHash.align52(GeoHash.Bits(bits: box.bits + 1, step: box.step)))
            var node = zset.firstNode(in: SortedSetScoreRange(min: minimum, max: maximum, maxExclusive: true))?.node
            while let current = node, current.score < maximum {
                if let point = GeoHash.decode(score: current.score),
                   let distance = shape.distanceIfInside(longitude: point.longitude, latitude: point.latitude) {
                    points.append(Point(member: current.member, longitude: point.longitude, latitude: point.latitude,
                                        distance: distance, score: current.score))
                }
                if !points.isEmpty && limit > 0 && points.count >= limit { break }
                node = current.next
            }
            lastProcessed = boxIndex
        }
        if let ascending { points.sort { ascending ? $0.distance < $1.distance : $0.distance > $1.distance } }
        let returned = count == 0 ? points.count : min(count, points.count)

        if let storeIndex {
            let destination = context.key(storeIndex)
            if returned == 0 {
                if context.db.delete(destination) { context.notify(.generic, "del", argument: storeIndex) }
            } else {
                let stored = SortedSetValue()
                for point in points.prefix(returned) {
                    stored.add(point.member, score: storeDistance ? point.distance / shape.conversion : point.score)
                }
                context.db.set(destination, .sortedSet(stored))
                context.notify(.sortedSet, isSearch ? "geosearchstore" : "georadiusstore", argument: storeIndex)
                context.signalReady(destination)
            }
            reply.integer(returned)
            return
        }
        let extras = (withDistance ? 1 : 0) + (withHash ? 1 : 0) + (withCoordinates ? 1 : 0)
        reply.arrayHeader(returned)
        for point in points.prefix(returned) {
            if extras > 0 { reply.arrayHeader(extras + 1) }
            point.member.withBytes { reply.bulk($0) }
            if withDistance { writeDistance(point.distance / shape.conversion, &reply) }
            if withHash { reply.integer(Int(point.score)) }
            if withCoordinates {
                reply.arrayHeader(2)
                writeCoordinate(point.longitude, &reply)
                writeCoordinate(point.latitude, &reply)
            }
        }
    }
}
