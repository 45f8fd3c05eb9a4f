import RelayTestSupport
import Synchronization
import Testing

@testable import Relay

/// The consumer's long-lived command workers (``CommandWorkers``): jobs reuse parked workers, the parked ones stay
/// bounded, and closing or cancelling ends them (so the consumer's task group can finish).
@Suite("Command workers")
struct CommandWorkersTests {
    /// Records which worker ran each job.
    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// Counts workers that ended.
    final class Count: Sendable {
        let value = Atomic(0)
        func add() { value.add(1, ordering: .relaxed) }
        var current: Int { value.load(ordering: .relaxed) }
    }

    @Test func aParkedWorkerRunsTheNextJobInsteadOfANewTask() async throws {
        let workers = CommandWorkers(maxIdle: 4)
        let log = Log()
        #expect(!workers.handOff { log.add("lost") })  // nobody parked yet: the caller must start a worker
        await withDiscardingTaskGroup { group in
            group.addTask { await workers.work { log.add("first") } }
            try? await eventually("the worker parks after its first job", timeout: .seconds(10)) {
                workers.idleCount == 1
            }
            for index in 1...5 {
                #expect(workers.handOff { log.add("job \(index)") })
                try? await eventually("the worker parks again", timeout: .seconds(10)) { workers.idleCount == 1 }
            }
            workers.close()
        }
        #expect(log.all == ["first", "job 1", "job 2", "job 3", "job 4", "job 5"])
        #expect(workers.idleCount == 0)
    }

    @Test func workersBeyondTheParkedBoundEnd() async throws {
        let workers = CommandWorkers(maxIdle: 2)
        let ended = Count()
        let gate = AsyncGate()
        await withDiscardingTaskGroup { group in
            // Five workers busy at once (commands that gave their slots back early), then all finish.
            for _ in 1...5 {
                group.addTask {
                    await workers.work { await gate.wait() }
                    ended.add()
                }
            }
            await gate.open()
            try? await eventually("three workers end, two park", timeout: .seconds(10)) {
                ended.current == 3 && workers.idleCount == 2
            }
            #expect(workers.idleCount == 2)
            workers.close()
        }
        #expect(ended.current == 5)
    }

    @Test func cancellingTheGroupEndsParkedWorkersAndHandsNothingOut() async throws {
        let workers = CommandWorkers(maxIdle: 8)
        let finished = Count()
        let group = Task {
            await withDiscardingTaskGroup { group in
                for _ in 1...3 {
                    group.addTask {
                        await workers.work {}
                        finished.add()
                    }
                }
            }
        }
        try await eventually("three workers park", timeout: .seconds(10)) { workers.idleCount == 3 }
        group.cancel()
        await group.value
        #expect(finished.current == 3)
        // Closed by the cancellation: a job is no longer handed to anyone.
        #expect(!workers.handOff {})
    }
}

/// Opens once; tasks waiting on it resume then (a latch).
final class AsyncGate: Sendable {
    let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() async {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}
