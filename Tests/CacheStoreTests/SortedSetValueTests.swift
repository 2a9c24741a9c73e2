// Tests of the sorted-set storage: random operations on the skiplist + dictionary checked against a plain sorted
// array model (order, ranks, rank lookups, score/lex range bounds and the memory estimate).
import CacheStore
import Testing

private struct ModelElement: Equatable {
    var member: String
    var score: Double
}

private func modelOrder(_ a: ModelElement, _ b: ModelElement) -> Bool {
    a.score != b.score ? a.score < b.score : Array(a.member.utf8).lexicographicallyPrecedes(Array(b.member.utf8))
}

private func contents(_ zset: SortedSetValue) -> [ModelElement] {
    var result: [ModelElement] = []
    var node = zset.order.first
    while let current = node {
        result.append(ModelElement(member: current.member.string, score: current.score))
        node = current.next
    }
    return result
}

struct SortedSetValueTests {
    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsMatchASortedArrayModel(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let zset = SortedSetValue()
        var model: [ModelElement] = []
        for step in 0..<3000 {
            // Few distinct scores so ties ordered by member bytes are common; long members exercise heap storage.
            let member = "m\(Int.random(in: 0..<400, using: &random))" + (Bool.random(using: &random) ? String(repeating: "x", count: 30) : "")
            let score = Double(Int.random(in: -5...5, using: &random))
            if Int.random(in: 0..<3, using: &random) == 0 {
                let removed = zset.remove(CompactBytes(member))
                let index = model.firstIndex { $0.member == member }
                #expect(removed == index.map { model[$0].score })
                if let index { model.remove(at: index) }
            } else {
                let result = zset.add(CompactBytes(member), score: score)
                if let index = model.firstIndex(where: { $0.member == member }) {
                    #expect(result == (model[index].score == score ? .unchanged : .updated))
                    model.remove(at: index)
                } else {
                    #expect(result == .added)
                }
                let element = ModelElement(member: member, score: score)
                model.insert(element, at: model.firstIndex { !modelOrder($0, element) } ?? model.count)
            }
            #expect(zset.count == model.count)
            if step % 97 == 0 {
                #expect(contents(zset) == model)
                for (rank, element) in model.enumerated() {
                    #expect(zset.rank(of: CompactBytes(element.member)) == rank)
                    #expect(zset.rank(of: CompactBytes(element.member), reverse: true) == model.count - 1 - rank)
                    #expect(zset.node(atRank: rank)?.member.string == element.member)
                }
                // Backward links mirror the forward order.
                var backward: [String] = []
                var node = zset.order.tail
                while let current = node {
                    backward.append(current.member.string)
                    node = current.backward
                }
                #expect(backward == model.reversed().map(\.member))
                // Score ranges in every inclusive/exclusive combination.
                for low in -6...6 {
                    for high in low...6 {
                        for exclusive in [(false, false), (true, false), (false, true), (true, true)] {
                            let range = SortedSetScoreRange(min: Double(low), max: Double(high),
                                                            minExclusive: exclusive.0, maxExclusive: exclusive.1)
                            let expected = model.indices.filter { range.contains(model[$0].score) }
                            #expect(zset.count(in: range) == expected.count)
                            #expect(zset.firstNode(in: range)?.rank == expected.first)
                            #expect(zset.lastNode(in: range)?.rank == expected.last)
                        }
                    }
                }
                let expectedUsage = zset.memoryUsage
                zset.recomputeMemoryUsage()
                #expect(zset.memoryUsage == expectedUsage)
            }
        }
        let copy = zset.duplicate()
        #expect(contents(copy) == model)
        // Node levels are random, so the copy's estimate is its own; it must still be exact for the copy.
        let copyUsage = copy.memoryUsage
        copy.recomputeMemoryUsage()
        #expect(copy.memoryUsage == copyUsage)
        #expect(abs(copyUsage - zset.memoryUsage) < zset.memoryUsage / 10)
    }

    @Test func lexRangesFollowByteOrder() {
        let zset = SortedSetValue()
        for member in ["a", "b", "c", "d", "e", "f", "g", "\u{7f}", "aa"] { zset.add(CompactBytes(member), score: 0) }
        func members(_ min: String, _ max: String) -> [String] {
            let range = SortedSetLexRange(
                min: min.utf8.withContiguousStorageIfAvailable { SortedSetLexBound.parse(UnsafeRawBufferPointer($0)) }!!,
                max: max.utf8.withContiguousStorageIfAvailable { SortedSetLexBound.parse(UnsafeRawBufferPointer($0)) }!!)
            guard let first = zset.firstNode(in: range), let last = zset.lastNode(in: range) else { return [] }
            return (first.rank...last.rank).map { zset.node(atRank: $0)!.member.string }
        }
        #expect(members("-", "+") == ["a", "aa", "b", "c", "d", "e", "f", "g", "\u{7f}"])
        #expect(members("[b", "(e") == ["b", "c", "d"])
        #expect(members("(a", "[b") == ["aa", "b"])
        #expect(members("[g", "-").isEmpty)
        #expect(members("+", "+").isEmpty)
        #expect(members("(c", "(c").isEmpty)
        #expect(members("[c", "[c") == ["c"])
    }

    @Test func removingAllMembersReturnsTheEstimateToItsBase() {
        let zset = SortedSetValue()
        let empty = zset.memoryUsage
        for i in 0..<1000 { zset.add(CompactBytes("member-with-a-long-name-\(i)"), score: Double(i % 7)) }
        #expect(zset.memoryUsage > empty + 1000 * 24)
        #expect(zset.removeRange(ranks: 0, 499) == 500)
        for i in 0..<1000 { zset.remove(CompactBytes("member-with-a-long-name-\(i)")) }
        #expect(zset.isEmpty)
        #expect(zset.memoryUsage == empty)
    }

    @Test func releasingAHugeSetDoesNotRecurse() {
        var zset: SortedSetValue? = SortedSetValue()
        for i in 0..<300_000 { zset?.add(CompactBytes("\(i)"), score: Double(i)) }
        #expect(zset?.count == 300_000)
        zset = nil
        #expect(zset == nil)
    }

    @Test func scoreBoundsParseLikeRedis() {
        func bound(_ text: String) -> (Double, Bool)? {
            var text = text
            return text.withUTF8 { SortedSetScoreRange.parseBound(UnsafeRawBufferPointer($0)) }.map { ($0.value, $0.exclusive) }
        }
        #expect(bound("(1.5")! == (1.5, true))
        #expect(bound("-inf")! == (-Double.infinity, false))
        #expect(bound("(+inf")! == (Double.infinity, true))
        #expect(bound("abc") == nil)
        #expect(bound("(") == nil)
        #expect(bound("nan") == nil)
    }
}
