// Tests of the geo family through the real decoder, dispatcher and reply writer (redis tests/unit/geo.tcl). The
// known answers are what redis-server 7.0.15 replies to the same commands (the Sicily examples of redis's docs).
import CacheNode
import CacheNodeTestSupport
import Testing

private func sicily(_ client: TestClient) throws {
    _ = try client.send("GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
}

struct GeoCommandsTests {
    @Test func pointsDistancesHashesAndPositionsAreRedises() throws {
        let client = try TestNode().connect()
        #expect(try client.send("GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania") == .integer(2))
        #expect(try client.send("ZSCORE", "Sicily", "Palermo") == .string("3479099956230698"))
        #expect(try client.send("GEODIST", "Sicily", "Palermo", "Catania") == .string("166274.1516"))
        #expect(try client.send("GEODIST", "Sicily", "Palermo", "Catania", "km") == .string("166.2742"))
        #expect(try client.send("GEODIST", "Sicily", "Palermo", "missing") == .null)
        #expect(try client.send("GEOHASH", "Sicily", "Palermo", "Catania", "missing")
                == .array([.string("sqc8b49rny0"), .string("sqdtr74hyu0"), .null]))
        #expect(try client.send("GEOPOS", "Sicily", "Palermo", "missing")
                == .array([.array([.string("13.36138933897018433"), .string("38.11555639549629859")]), .nullArray]))
        // Under RESP3 coordinates are doubles; distances stay strings, as in redis.
        _ = try client.send("HELLO", "3")
        #expect(try client.send("GEOPOS", "Sicily", "Catania") == .array([.array([.double(15.08726745843887329), .double(37.50266842333162032)])]))
    }

    @Test func radiusSearchesWithEveryOption() throws {
        let client = try TestNode().connect()
        try sicily(client)
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "100", "km") == .array([.string("Catania")]))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH", "ASC") == .array([
            .array([.string("Catania"), .string("56.4413"), .integer(3479447370796909),
                    .array([.string("15.08726745843887329"), .string("37.50266842333162032")])]),
            .array([.string("Palermo"), .string("190.4424"), .integer(3479099956230698),
                    .array([.string("13.36138933897018433"), .string("38.11555639549629859")])]),
        ]))
        #expect(try client.send("GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "DESC")
                == .array([.string("Catania"), .string("Palermo")]))
        #expect(try client.send("GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "COUNT", "1") == .array([.string("Catania")]))
        #expect(try client.send("GEORADIUS", "missing", "15", "37", "200", "km") == .array([]))
    }

    @Test func searchesByBoxAndFromMembers() throws {
        let client = try TestNode().connect()
        try sicily(client)
        _ = try client.send("GEOADD", "Sicily", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2")
        #expect(try client.send("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "WITHDIST") == .array([
            .array([.string("Catania"), .string("56.4413")]), .array([.string("Palermo"), .string("190.4424")]),
            .array([.string("edge2"), .string("279.7403")]), .array([.string("edge1"), .string("279.7405")]),
        ]))
        #expect(try client.send("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "DESC", "COUNT", "2")
                == .array([.string("Catania"), .string("edge1")]))
        #expect(try client.send("GEOSEARCHSTORE", "near", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST") == .integer(2))
        // redis 7.0 prints the first score with %.17g (56.441257870158204); 7.2 and cache-node print the shortest
        // text that reads back as the same double.
        #expect(try client.send("ZRANGE", "near", "0", "-1", "WITHSCORES")
                == .array([.string("Catania"), .string("56.4412578701582"), .string("Palermo"), .string("190.44242984775784")]))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "copy") == .integer(2))
        #expect(try client.send("ZSCORE", "copy", "Palermo") == .string("3479099956230698"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "1", "m", "STORE", "copy") == .integer(0))
        #expect(try client.send("EXISTS", "copy") == .integer(0))
    }

    @Test func errorsAreRedises() throws {
        let client = try TestNode().connect()
        try sicily(client)
        #expect(try client.send("GEOADD", "Sicily", "200", "100", "bad") == .error("ERR invalid longitude,latitude pair 200.000000,100.000000"))
        #expect(try client.send("GEOADD", "Sicily", "NX", "XX", "1", "1", "m") == .error("ERR syntax error"))
        #expect(try client.send("GEOADD", "Sicily", "1", "1") == .error("ERR wrong number of arguments for 'geoadd' command"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "200", "parsecs")
                == .error("ERR unsupported unit provided. please use M, KM, FT, MI"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "-1", "km") == .error("ERR radius cannot be negative"))
        #expect(try client.send("GEORADIUSBYMEMBER", "Sicily", "nobody", "1", "km") == .error("ERR could not decode requested zset member"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "1", "km", "ANY") == .error("ERR the ANY argument requires COUNT argument"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT", "0") == .error("ERR COUNT must be > 0"))
        #expect(try client.send("GEORADIUS", "Sicily", "15", "37", "1", "km", "WITHDIST", "STORE", "x")
                == .error("ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"))
        #expect(try client.send("GEORADIUS_RO", "Sicily", "15", "37", "1", "km", "STORE", "x") == .error("ERR syntax error"))
        #expect(try client.send("GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "ASC", "WITHDIST")
                == .error("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"))
        #expect(try client.send("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "ASC", "WITHDIST")
                == .error("ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH"))
        #expect(try client.send("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "FROMMEMBER", "Palermo")
                == .error("ERR syntax error"))
        _ = try client.send("SET", "str", "x")
        #expect(try client.send("GEOPOS", "str", "a").text?.hasPrefix("WRONGTYPE") == true)
    }
}
